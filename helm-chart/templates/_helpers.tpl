{{/* Chart name, overridable. */}}
{{- define "netchecker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, at most 63 characters (DNS label limit). When the
release name already contains the chart name it is used as is.
*/}}
{{- define "netchecker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, as used by the helm.sh/chart label. */}}
{{- define "netchecker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "netchecker.labels" -}}
helm.sh/chart: {{ include "netchecker.chart" . }}
{{ include "netchecker.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: netchecker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select this release's objects. */}}
{{- define "netchecker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "netchecker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Server selector labels. `app: netchecker-server` matches the original
manifests, so existing Services and dashboards keep finding the pod.
*/}}
{{- define "netchecker.server.selectorLabels" -}}
{{ include "netchecker.selectorLabels" . }}
app.kubernetes.io/component: server
app: netchecker-server
{{- end }}

{{/*
Agent selector labels; the argument is a dict with the root context (ctx)
and the exact `app` label value. The server finds the agents it expects by
`app in (netchecker-agent,netchecker-agent-hostnet)`, so `app` must be one of
those two values, never prefixed with the release name.
*/}}
{{- define "netchecker.agent.selectorLabels" -}}
{{ include "netchecker.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .app }}
app: {{ .app }}
{{- end }}

{{/* Name of the server's ServiceAccount. */}}
{{- define "netchecker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-server" (include "netchecker.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the agents' ServiceAccount. Their report tokens name it; it is never
bound to any role.
*/}}
{{- define "netchecker.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (printf "%s-agent" (include "netchecker.fullname" . | trunc 57 | trimSuffix "-")) .Values.agent.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
reportAuth.mode as off, warn or enforce. A bare `off` in a YAML values file
arrives as the boolean false (YAML 1.1), which means off too.
*/}}
{{- define "netchecker.reportAuthMode" -}}
{{- $m := .Values.reportAuth.mode | toString }}
{{- if or (eq $m "false") (eq $m "off") }}off
{{- else if has $m (list "warn" "enforce") }}{{ $m }}
{{- else }}{{ fail (printf "reportAuth.mode must be off, warn or enforce, not %q" $m) }}
{{- end }}
{{- end }}

{{/* Where the agents' projected report token is mounted, and its file. */}}
{{- define "netchecker.agent.tokenDir" -}}/var/run/secrets/netchecker{{- end }}
{{- define "netchecker.agent.tokenFile" -}}{{ include "netchecker.agent.tokenDir" . }}/token{{- end }}

{{/* Where the server's read token (server.readToken) is mounted, and its file. */}}
{{- define "netchecker.server.readTokenDir" -}}/var/run/secrets/netchecker-read{{- end }}
{{- define "netchecker.server.readTokenFile" -}}{{ include "netchecker.server.readTokenDir" . }}/token{{- end }}

{{/*
The one namespace the server watches, or "" for all namespaces
(server.watchAllNamespaces).
*/}}
{{- define "netchecker.watchNamespace" -}}
{{- if .Values.server.watchAllNamespaces }}
{{- if .Values.server.watchNamespace }}
{{- fail "server.watchNamespace and server.watchAllNamespaces exclude each other: set one" }}
{{- end }}
{{- else }}
{{- default .Release.Namespace .Values.server.watchNamespace }}
{{- end }}
{{- end }}

{{/*
The server's resources: server.resources, with the memory request and limit
computed from server.maxAgents unless server.resources sets either
(coefficients measured, see doc/operations.md "Sizing"):
  request = requestBaseMiB + requestPerAgentKiB * maxAgents / 1024  (MiB, rounded up)
  limit   = limitBaseMiB + limitPerAgentKiB * maxAgents / 1024      (MiB, rounded up)
*/}}
{{- define "netchecker.server.resources" -}}
{{- $s := .Values.server -}}
{{- $r := deepCopy (default dict $s.resources) -}}
{{- $req := default dict $r.requests -}}
{{- $lim := default dict $r.limits -}}
{{- if not (or (hasKey $req "memory") (hasKey $lim "memory")) -}}
{{- $m := $s.memory -}}
{{- $request := ceil (addf $m.requestBaseMiB (divf (mulf $m.requestPerAgentKiB $s.maxAgents) 1024)) | int -}}
{{- $limit := ceil (addf $m.limitBaseMiB (divf (mulf $m.limitPerAgentKiB $s.maxAgents) 1024)) | int -}}
{{- $_ := set $req "memory" (printf "%dMi" $request) -}}
{{- $_ := set $lim "memory" (printf "%dMi" $limit) -}}
{{- $_ := set $r "requests" $req -}}
{{- $_ := set $r "limits" $lim -}}
{{- end -}}
{{- toYaml $r }}
{{- end }}

{{/* Image reference; the argument is an image values block plus the root context. */}}
{{- define "netchecker.image" -}}
{{- $img := .image }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository (default .ctx.Chart.AppVersion $img.tag) }}
{{- end }}
{{- end }}

{{/* RUST_LOG for a component values block: rustLog wins, else logLevel for our crates. */}}
{{- define "netchecker.rustLog" -}}
{{- if .rustLog }}
{{- .rustLog }}
{{- else }}
{{- $l := .logLevel | default "info" }}
{{- printf "warn,netchecker=%s,netchecker_server=%s,netchecker_agent=%s,netchecker_wire=%s,netchecker_cli=%s" $l $l $l $l $l }}
{{- end }}
{{- end }}

{{/*
host:port the agents report to: agent.serverEndpoint; else, when they report
to every replica, the headless Service on the server's container port (its
name resolves to the pods' own addresses, no Service port mapping applies);
else the ClusterIP Service, as the original's agents.
*/}}
{{- define "netchecker.serverEndpoint" -}}
{{- if .Values.agent.serverEndpoint }}
{{- .Values.agent.serverEndpoint }}
{{- else if .Values.agent.reportToAllAddresses }}
{{- printf "%s:%d" (include "netchecker.reportsServiceName" .) (int64 .Values.server.port) }}
{{- else }}
{{- printf "%s:%v" .Values.server.service.name .Values.server.service.port }}
{{- end }}
{{- end }}

{{/* Namespace for an optional monitoring object (argument: its namespace value and ctx). */}}
{{- define "netchecker.namespaceOr" -}}
{{- default .ctx.Release.Namespace .ns }}
{{- end }}

{{/*
Seconds per mesh round: mesh.round, else the agents' report interval (they
probe once per report, so a round should last one interval).
*/}}
{{- define "netchecker.mesh.round" -}}
{{- if .Values.mesh.round }}{{ int64 .Values.mesh.round }}{{ else }}{{ int64 .Values.agent.reportInterval }}{{ end }}
{{- end }}

{{/*
The mesh port of an agent variant (argument: dict with ctx and hostNetwork).
*/}}
{{- define "netchecker.mesh.port" -}}
{{- if .hostNetwork }}{{ int64 .ctx.Values.mesh.hostPort }}{{ else }}{{ int64 .ctx.Values.mesh.podPort }}{{ end }}
{{- end }}

{{/*
Name of the headless Service the agents report through when they report to
every server replica (agent.reportToAllAddresses).
*/}}
{{- define "netchecker.reportsServiceName" -}}
{{- default (printf "%s-reports" (include "netchecker.fullname" . | trunc 55 | trimSuffix "-")) .Values.server.reportsService.name }}
{{- end }}

{{/*
"true" when the server is to answer /readyz only once warm
(NETCHECKER_READY_WHEN_WARM). server.readyWhenWarm when set; otherwise on
exactly when the chart's agents report to every replica through the headless
Service, which is what lets a replica that is not ready yet get the reports
it needs to become ready. Agents that report through the ClusterIP Service
cannot reach a replica that is not ready: it would wait out the whole
start-up grace.
*/}}
{{- define "netchecker.server.readyWhenWarm" -}}
{{- $w := .Values.server.readyWhenWarm }}
{{- if kindIs "bool" $w }}{{ $w }}{{ else }}{{ .Values.agent.reportToAllAddresses | toString }}{{ end }}
{{- end }}

{{/*
Checks of the replica settings, included by the server Deployment. Several
replicas share nothing: each needs every report, which only agents that
report to every address of the headless Service give it.
*/}}
{{- define "netchecker.server.checkReplicas" -}}
{{- if and (gt (int64 .Values.server.replicas) 1) (not .Values.agent.reportToAllAddresses) }}
{{- fail (printf "server.replicas=%d needs agent.reportToAllAddresses=true: every replica must get every report, or each answers the check from part of them (with the original's agents, which report to one Service address, keep server.replicas=1)" (int64 .Values.server.replicas)) }}
{{- end }}
{{- end }}

{{/*
The server pod's affinity: server.affinity, plus a podAntiAffinity on the
node (server.podAntiAffinity soft or hard) when there are several replicas
and server.affinity sets no podAntiAffinity of its own.
*/}}
{{- define "netchecker.server.affinity" -}}
{{- $s := .Values.server -}}
{{- $a := deepCopy (default dict $s.affinity) -}}
{{- if and (gt (int64 $s.replicas) 1) $s.podAntiAffinity (not (hasKey $a "podAntiAffinity")) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "netchecker.server.selectorLabels" . | fromYaml)) -}}
{{- if eq $s.podAntiAffinity "hard" -}}
{{- $_ := set $a "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else if eq $s.podAntiAffinity "soft" -}}
{{- $_ := set $a "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- else -}}
{{- fail (printf "server.podAntiAffinity must be soft, hard or empty, not %q" $s.podAntiAffinity) -}}
{{- end -}}
{{- end -}}
{{- if $a }}{{ toYaml $a }}{{ end -}}
{{- end }}

{{/*
The server pod's topologySpreadConstraints: server.topologySpreadConstraints,
each given the server pods' labelSelector when it has none.
*/}}
{{- define "netchecker.server.topologySpreadConstraints" -}}
{{- $out := list -}}
{{- range .Values.server.topologySpreadConstraints -}}
{{- $c := deepCopy . -}}
{{- if not (hasKey $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "netchecker.server.selectorLabels" $ | fromYaml)) -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- if $out }}{{ toYaml $out }}{{ end -}}
{{- end }}

{{/*
The Deployment's strategy: server.strategy, without rollingUpdate when the
type is Recreate (a values file that sets only the type keeps the default
rollingUpdate block through Helm's merge, which the API would refuse).
*/}}
{{- define "netchecker.server.strategy" -}}
{{- $st := deepCopy (default dict .Values.server.strategy) -}}
{{- if eq (toString $st.type) "Recreate" }}{{ $_ := unset $st "rollingUpdate" }}{{ end -}}
{{- toYaml $st }}
{{- end }}

{{/*
A Role or ClusterRole with its binding to the server's ServiceAccount
(argument: dict with ctx, kind "Role" or "ClusterRole", name, namespace
(Role only) and rules). Every grant of the server goes through this, so a
new one is a list of rules and one include.
*/}}
{{/*
The Lease the server replicas elect their leader on.
*/}}
{{- define "netchecker.leaseName" -}}
{{- .Values.server.leaderElection.leaseName | default (printf "%s-server" (include "netchecker.fullname" . | trunc 56 | trimSuffix "-")) -}}
{{- end }}

{{- define "netchecker.incidentsConfigMap" -}}
{{- .Values.server.leaderElection.incidentsConfigMap | default (printf "%s-incidents" (include "netchecker.fullname" . | trunc 53 | trimSuffix "-")) -}}
{{- end }}

{{- define "netchecker.server.rbac" -}}
{{- $ctx := .ctx -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ .kind }}
metadata:
  name: {{ .name }}
  {{- if .namespace }}
  namespace: {{ .namespace }}
  {{- end }}
  labels:
    {{- include "netchecker.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: server
rules:
  {{- toYaml .rules | nindent 2 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: {{ .kind }}Binding
metadata:
  name: {{ .name }}
  {{- if .namespace }}
  namespace: {{ .namespace }}
  {{- end }}
  labels:
    {{- include "netchecker.labels" $ctx | nindent 4 }}
    app.kubernetes.io/component: server
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: {{ .kind }}
  name: {{ .name }}
subjects:
  - kind: ServiceAccount
    name: {{ include "netchecker.serviceAccountName" $ctx }}
    namespace: {{ $ctx.Release.Namespace }}
{{- end }}

{{- define "netchecker.listenAddress" -}}
{{- if .Values.server.listenAddress -}}
{{- .Values.server.listenAddress -}}
{{- else if has "IPv6" .Values.ipFamilies -}}
[::]
{{- else -}}
0.0.0.0
{{- end -}}
{{- end }}

{{- define "netchecker.ipFamilies" -}}
{{- with .Values.ipFamilyPolicy }}
ipFamilyPolicy: {{ . }}
{{- end }}
{{- with .Values.ipFamilies }}
ipFamilies:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
