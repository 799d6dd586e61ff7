//! Kubeconfig text for a client of the fake: one cluster reached over
//! plain HTTP, an empty user (the fake does not authenticate), and a
//! current context whose default namespace is `default`.

/// A kubeconfig whose current context points at `server_url`
/// (for example `http://127.0.0.1:PORT`).
pub fn kubeconfig_yaml(server_url: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {server_url}
users:
- name: fake
  user: {{}}
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
preferences: {{}}
"
    )
}
