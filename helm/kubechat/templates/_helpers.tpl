{{- define "kubechat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The prefix of the names of what the release makes cluster-wide or in
namespaces other than its own (ClusterRoles, and Roles where identities
and command pods are): the full name and the release's namespace, so
that releases of one name in two namespaces share none of them. Package
rbac names them the same way (rbac.WideName).
*/}}
{{- define "kubechat.wideName" -}}
{{- printf "%s-%s" (include "kubechat.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "kubechat.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubechat.labels" -}}
{{ include "kubechat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kubechat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubechat.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The agent's (or hub's) config: values.config with what the chart
decides. A hub (mode: hub) elects its leader through NATS and signs no
buttons, so its ha section is left as given; the default sources, an
agent's, are dropped. */}}
{{- define "kubechat.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $cluster := default dict $cfg.cluster -}}
{{- $_ := set $cluster "namespace" .Release.Namespace -}}
{{- $_ := set $cfg "cluster" $cluster -}}
{{- $http := default dict $cfg.http -}}
{{- $_ := set $http "listen" (printf ":%d" (int .Values.service.port)) -}}
{{- $_ := set $cfg "http" $http -}}
{{- if eq .Values.mode "hub" -}}
{{- /* The chart's default sources are an agent's; a hub has none. */ -}}
{{- $_ := unset $cfg "sources" -}}
{{- else -}}
{{- $ha := default dict $cfg.ha -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- $_ := set $ha "leaderElection" true -}}
{{- end -}}
{{- if not (hasKey $ha "buttonKey") -}}
{{- $_ := set $ha "buttonKey" "${KUBECHAT_BUTTON_KEY}" -}}
{{- end -}}
{{- $_ := set $cfg "ha" $ha -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
The identities commands run as in the agent (impersonated), as
podrun.Place derives them in Go (package rbac; a test holds the two
together): the identity of each channel with an executor bound that runs
in-process (not run, not isolation: pod), and users' identities on those
channels' platforms (a user's identity replaces the channel's), with the
groups the agent adds (system:authenticated, and the ServiceAccount
groups). A user named system:serviceaccount:NS:NAME is checked by the API
server as that ServiceAccount. A JSON object {users, groups,
serviceAccounts} where serviceAccounts maps a namespace to names.
*/}}
{{- define "kubechat.identities" -}}
{{- $users := list -}}
{{- $groups := list -}}
{{- $sas := dict -}}
{{- $ids := list -}}
{{- $execs := dict -}}
{{- range (default list .Values.config.executors) }}{{ $_ := set $execs (default .type .name) . }}{{ end -}}
{{- $platforms := dict -}}
{{- range (default list .Values.config.channels) -}}
{{- $ch := . -}}
{{- range (default list (default dict $ch.bindings).executors) -}}
{{- $e := get $execs . -}}
{{- /* Commands in pods run as the pod's ServiceAccount: no impersonation. */ -}}
{{- if and $e (ne $e.type "run") (ne (default (default "inProcess" $e.isolation) $ch.isolation) "pod") -}}
{{- $_ := set $platforms $ch.platform true -}}
{{- if $ch.identity }}{{ $ids = append $ids $ch.identity }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range (default list .Values.config.users) }}{{ if and .identity (hasKey $platforms .platform) }}{{ $ids = append $ids .identity }}{{ end }}{{ end -}}
{{- range $ids -}}
{{- if .serviceAccount -}}
{{- $parts := splitList "/" .serviceAccount -}}
{{- $ns := index $parts 0 -}}
{{- $_ := set $sas $ns (append (default list (get $sas $ns)) (index $parts 1) | uniq | sortAlpha) -}}
{{- $groups = append $groups "system:serviceaccounts" -}}
{{- $groups = append $groups (printf "system:serviceaccounts:%s" $ns) -}}
{{- else if .user -}}
{{- if hasPrefix "system:serviceaccount:" .user -}}
{{- $ns := index (splitList ":" .user) 2 -}}
{{- $name := trimPrefix (printf "system:serviceaccount:%s:" $ns) .user -}}
{{- $_ := set $sas $ns (append (default list (get $sas $ns)) $name | uniq | sortAlpha) -}}
{{- else -}}
{{- $users = append $users .user -}}
{{- end -}}
{{- range (default list .groups) }}{{ $groups = append $groups . }}{{ end -}}
{{- end -}}
{{- $groups = append $groups "system:authenticated" -}}
{{- end -}}
{{- dict "users" ($users | uniq | sortAlpha) "groups" ($groups | uniq | sortAlpha) "serviceAccounts" $sas | toJson -}}
{{- end -}}

{{/*
The resources the sources watch, as RBAC rules: a JSON list of
{group, resource}, plus whether a recommendation reads Services and Secrets,
and whether a github source lists Kustomizations, GitRepositories and
Argo CD Applications.
*/}}
{{- define "kubechat.watched" -}}
{{- $rules := list -}}
{{- $ingressBackends := false -}}
{{- $gitops := false -}}
{{- range (default list .Values.config.sources) -}}
{{- if eq .type "github" -}}
{{- $gitops = true -}}
{{- end -}}
{{- if and (eq .type "kubernetes") .kubernetes -}}
{{- range (default list .kubernetes.resources) -}}
{{- $parts := splitList "/" .type -}}
{{- if eq (len $parts) 2 -}}
{{- $rules = append $rules (dict "group" "" "resource" (index $parts 1)) -}}
{{- else if eq (len $parts) 3 -}}
{{- $rules = append $rules (dict "group" (index $parts 0) "resource" (index $parts 2)) -}}
{{- else -}}
{{- fail (printf "config.sources[%s]: resource type %q is not [group/]version/resource" .type .type) -}}
{{- end -}}
{{- end -}}
{{- if and .kubernetes.recommendations .kubernetes.recommendations.ingressBackends -}}
{{- $ingressBackends = true -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "rules" ($rules | uniq) "ingressBackends" $ingressBackends "gitops" $gitops | toJson -}}
{{- end -}}

{{/*
The namespaces command pods run in (isolation: pod, and the run executor),
as podrun.Place derives them in Go: a JSON object {namespaces}. A pod runs
as a ServiceAccount of its own namespace, so these are the namespaces of
the identities of channels whose commands run in pods, each pod-isolated
executor's pod.namespace, the run executor's settings.namespace and its
templates' ServiceAccounts, and the namespaces of users' ServiceAccount
identities on those channels' platforms.
*/}}
{{- define "kubechat.podNamespaces" -}}
{{- $cfg := .Values.config -}}
{{- $execs := dict -}}
{{- range (default list $cfg.executors) }}{{ $_ := set $execs (default .type .name) . }}{{ end -}}
{{- $nss := list -}}
{{- $platforms := dict -}}
{{- range (default list $cfg.channels) -}}
{{- $ch := . -}}
{{- range (default list (default dict $ch.bindings).executors) -}}
{{- $e := get $execs . -}}
{{- if $e -}}
{{- $iso := default (default "inProcess" $e.isolation) $ch.isolation -}}
{{- if or (eq $e.type "run") (eq $iso "pod") -}}
{{- $_ := set $platforms $ch.platform true -}}
{{- if and $ch.identity $ch.identity.serviceAccount }}{{ $nss = append $nss (first (splitList "/" $ch.identity.serviceAccount)) }}{{ end -}}
{{- if eq $e.type "run" -}}
{{- /* The run executor names its pods' namespaces in its settings; it has no pod settings. */ -}}
{{- $s := default dict $e.settings -}}
{{- if $s.namespace }}{{ $nss = append $nss $s.namespace }}{{ end -}}
{{- range (default list $s.templates) }}{{ if .serviceAccount }}{{ $nss = append $nss (first (splitList "/" .serviceAccount)) }}{{ end }}{{ end -}}
{{- else if and $e.pod $e.pod.namespace -}}
{{- $nss = append $nss $e.pod.namespace -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range (default list $cfg.users) }}{{ if and .identity .identity.serviceAccount (hasKey $platforms .platform) }}{{ $nss = append $nss (first (splitList "/" .identity.serviceAccount)) }}{{ end }}{{ end -}}
{{- dict "namespaces" ($nss | uniq | sortAlpha) | toJson -}}
{{- end -}}

{{/*
What each channel's identity may do with Argo CD Applications, as package
rbac derives it: for every argocd executor bound to a channel with an
identity, {channel, executor, verbs, namespaces (none: cluster-wide),
serviceAccount {namespace, name} or user}. Verbs are get, list and watch,
and patch where the executor's policy allows app sync, refresh or rollback.
*/}}
{{- define "kubechat.argocdGrants" -}}
{{- $cfg := .Values.config -}}
{{- $execs := dict -}}
{{- range (default list $cfg.executors) }}{{ $_ := set $execs (default .type .name) . }}{{ end -}}
{{- $grants := list -}}
{{- range (default list $cfg.channels) -}}
{{- $ch := . -}}
{{- $id := default dict $ch.identity -}}
{{- $sa := dict -}}
{{- if $id.serviceAccount -}}
{{- $parts := splitList "/" $id.serviceAccount -}}
{{- $sa = dict "namespace" (index $parts 0) "name" (index $parts 1) -}}
{{- else if hasPrefix "system:serviceaccount:" (default "" $id.user) -}}
{{- $parts := splitList ":" $id.user -}}
{{- $sa = dict "namespace" (index $parts 2) "name" (trimPrefix (printf "system:serviceaccount:%s:" (index $parts 2)) $id.user) -}}
{{- end -}}
{{- if or $sa $id.user -}}
{{- range (default list (default dict $ch.bindings).executors) -}}
{{- $e := get $execs . -}}
{{- if and $e (eq $e.type "argocd") -}}
{{- $p := default dict $e.policy -}}
{{- $verbs := list "get" "list" "watch" -}}
{{- range (default list $p.verbs) }}{{ if has . (list "*" "app sync" "app refresh" "app rollback") }}{{ $verbs = append $verbs "patch" }}{{ end }}{{ end -}}
{{- $nss := default list $p.namespaces -}}
{{- if has "*" $nss }}{{ $nss = list }}{{ end -}}
{{- $grants = append $grants (dict "channel" $ch.name "executor" (default $e.type $e.name) "verbs" ($verbs | uniq) "namespaces" ($nss | uniq | sortAlpha) "serviceAccount" $sa "user" (default "" $id.user)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "grants" $grants | toJson -}}
{{- end -}}

{{/*
The Secret holding the key that signs button ids: buttonKey.existingSecret,
else one the chart makes (and keeps across upgrades).
*/}}
{{- define "kubechat.buttonKeySecret" -}}
{{- default (printf "%s-buttons" (include "kubechat.fullname" .)) .Values.buttonKey.existingSecret -}}
{{- end -}}

{{/*
GOMEMLIMIT, in bytes: 90% of resources.limits.memory. The Go runtime
collects garbage harder as its heap nears GOMEMLIMIT; at 100% it would
only do so once the container is about to be OOM-killed, as the limit
also counts memory the runtime does not manage (the binary's pages,
cgo, the kernel's accounting). Quantities are Kubernetes' (256Mi, 1G,
1.5Gi, 268435456, 1e9).
*/}}
{{- define "kubechat.gomemlimit" -}}
{{- $limits := default dict (default dict .Values.resources).limits -}}
{{- $q := toString (required "resources.limits.memory is required: GOMEMLIMIT is set from it" $limits.memory) -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]*)?([eE][-+]?[0-9]+)?" $q -}}
{{- $unit := trimPrefix $num $q -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- if or (not $num) (not (hasKey $units $unit)) -}}
{{- fail (printf "resources.limits.memory: %q is not a memory quantity such as 256Mi or 1G" $q) -}}
{{- end -}}
{{- printf "%d" (int64 (floor (mulf (float64 $num) (get $units $unit) 0.9))) -}}
{{- end -}}
