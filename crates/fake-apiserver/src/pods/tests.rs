use super::*;

#[test]
fn agent_pod_has_what_the_server_reads() {
    let pod = agent_pod("netchecker", "agent-1", "netchecker-agent", "node-a");
    let json = serde_json::to_value(&pod).unwrap();
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["metadata"]["labels"]["app"], "netchecker-agent");
    assert_eq!(json["metadata"]["namespace"], "netchecker");
    assert_eq!(json["spec"]["nodeName"], "node-a");
    assert_eq!(json["status"]["phase"], "Running");
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(json["metadata"]["creationTimestamp"].is_string());
}

#[test]
fn agent_pods_have_a_service_account_and_addresses() {
    let pod = agent_pod(
        "netchecker",
        "agent-1",
        "netchecker-agent",
        "pods-test-node-a",
    );
    let json = serde_json::to_value(&pod).unwrap();
    assert_eq!(json["spec"]["serviceAccountName"], "netchecker-agent");
    assert!(json["spec"].get("hostNetwork").is_none());
    let pod_ip: IpAddr = json["status"]["podIP"].as_str().unwrap().parse().unwrap();
    let host_ip: IpAddr = json["status"]["hostIP"].as_str().unwrap().parse().unwrap();
    assert!(matches!(pod_ip, IpAddr::V4(v4) if v4.octets()[..2] == [198, 19]));
    assert!(matches!(host_ip, IpAddr::V4(v4) if v4.octets()[..2] == [198, 18]));
    assert_eq!(
        json["status"]["podIPs"],
        serde_json::json!([{ "ip": pod_ip }])
    );
    assert_eq!(
        json["status"]["hostIPs"],
        serde_json::json!([{ "ip": host_ip }])
    );
    assert!(json["metadata"].get("deletionTimestamp").is_none());

    // Pods on one node share its host IP, and it is the node's InternalIP.
    let other = agent_pod(
        "netchecker",
        "agent-2",
        "netchecker-agent",
        "pods-test-node-a",
    );
    let status = other.status.unwrap();
    assert_eq!(status.host_ip, Some(host_ip.to_string()));
    assert_ne!(status.pod_ip, Some(pod_ip.to_string()));
    let node = crate::node("pods-test-node-a").build();
    let addresses = node.status.unwrap().addresses.unwrap();
    assert_eq!(addresses[0].type_, "InternalIP");
    assert_eq!(addresses[0].address, host_ip.to_string());
}

#[test]
fn hostnet_pods_use_the_host_network_and_its_address() {
    let pod = agent_pod(
        "netchecker",
        "h",
        "netchecker-agent-hostnet",
        "pods-test-node-b",
    );
    let (spec, status) = (pod.spec.unwrap(), pod.status.unwrap());
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(status.pod_ip, status.host_ip);
    let pod = PodBuilder::new("ns", "h", "netchecker-agent-hostnet", "n")
        .host_network(false)
        .build();
    assert_eq!(pod.spec.unwrap().host_network, None);
}

#[test]
fn builder_sets_what_it_is_told() {
    let v4: IpAddr = "198.19.200.1".parse().unwrap();
    let v6: IpAddr = "2001:2:0:1::1".parse().unwrap();
    let pod = PodBuilder::new("ns", "p", "netchecker-agent", "n")
        .uid("11111111-2222-4333-8444-555555555555")
        .service_account("other-sa")
        .pod_ips([v4, v6])
        .host_ip("198.18.200.1".parse().unwrap())
        .phase("Pending")
        .terminating()
        .build();
    assert_eq!(
        pod.metadata.uid.as_deref(),
        Some("11111111-2222-4333-8444-555555555555")
    );
    assert!(pod.metadata.deletion_timestamp.is_some());
    assert_eq!(pod.metadata.deletion_grace_period_seconds, Some(30));
    let spec = pod.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("other-sa"));
    let status = pod.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.pod_ip.as_deref(), Some("198.19.200.1"));
    let ips: Vec<_> = status.pod_ips.unwrap().into_iter().map(|p| p.ip).collect();
    assert_eq!(ips, ["198.19.200.1", "2001:2:0:1::1"]);
    assert_eq!(status.host_ip.as_deref(), Some("198.18.200.1"));

    let bare = PodBuilder::new("ns", "p", "a", "n").pod_ips([]).build();
    let status = bare.status.unwrap();
    assert_eq!((status.pod_ip, status.pod_ips), (None, None));
}

#[test]
fn dual_stack_adds_ipv6_twins_from_the_documentation_range() {
    let pod: Pod = PodBuilder::new("ns", "p", "netchecker-agent", "pods-test-node-c")
        .dual_stack()
        .into();
    let status = pod.status.unwrap();
    for ips in [
        status
            .pod_ips
            .unwrap()
            .into_iter()
            .map(|p| p.ip)
            .collect::<Vec<_>>(),
        status.host_ips.unwrap().into_iter().map(|h| h.ip).collect(),
    ] {
        assert_eq!(ips.len(), 2);
        let v4: std::net::Ipv4Addr = ips[0].parse().unwrap();
        let v6: std::net::Ipv6Addr = ips[1].parse().unwrap();
        assert_eq!(v6, ipv6_twin(v4));
        assert_eq!(&v6.segments()[..3], &[0x2001, 2, 0]);
    }
}
