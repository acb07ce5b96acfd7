package kubectl

import (
	"github.com/kubechat/kubechat/internal/executor"
)

// This file is the allow-list: the subcommands kubectl may run from chat,
// how each one's arguments name resources, and what each flag may do.
// Anything not listed is refused, so a kubectl upgrade that adds a
// subcommand or a flag adds nothing to chat until it is listed here
// (TestEveryFlagIsClassified walks kubectl's tree to find them).

// argKind says how a subcommand's positional arguments name resources.
type argKind int

const (
	// argsNone: the command reads no objects (version, api-resources).
	argsNone argKind = iota
	// argsTypeNames: TYPE[,TYPE...] [NAME...] or TYPE/NAME..., as get takes them.
	argsTypeNames
	// argsPairs: resources as for argsTypeNames, then KEY=VALUE or KEY- (label, annotate, set image).
	argsPairs
	// argsEnv: resources, then NAME=VALUE or NAME- (set env).
	argsEnv
	// argsLastIsValue: resources, then one value (set selector, set serviceaccount).
	argsLastIsValue
	// argsTaint: resources, then taints (KEY=VALUE:EFFECT, KEY:EFFECT, KEY-).
	argsTaint
	// argsLogs: POD or TYPE/NAME, then an optional container.
	argsLogs
	// argsFixed: the command acts on its fixed resources; arguments are names.
	argsFixed
)

// spec is what kubechat knows about one kubectl subcommand.
type spec struct {
	args argKind
	// pairType names the pairs of argsPairs in kubectl's errors ("label").
	pairType string
	// fixed are resources the command always acts on, besides any its
	// arguments name (expose creates a Service).
	fixed []executor.Resource
	// namespace is one the command always reads (cluster-info: kube-system).
	namespace string
}

func core(resource string, namespaced bool) executor.Resource {
	return executor.Resource{Resource: resource, Namespaced: namespaced}
}

func grouped(resource, group string, namespaced bool) executor.Resource {
	return executor.Resource{Group: group, Resource: resource, Namespaced: namespaced}
}

const rbacGroup = "rbac.authorization.k8s.io"

// commands are the subcommands chat may run, by their path under kubectl.
var commands = map[string]spec{
	"get":                     {args: argsTypeNames},
	"describe":                {args: argsTypeNames},
	"logs":                    {args: argsLogs},
	"explain":                 {args: argsNone},
	"api-resources":           {args: argsNone},
	"api-versions":            {args: argsNone},
	"version":                 {args: argsNone},
	"options":                 {args: argsNone},
	"auth can-i":              {args: argsNone},
	"auth whoami":             {args: argsNone},
	"top pod":                 {args: argsFixed, fixed: []executor.Resource{grouped("pods", "metrics.k8s.io", true)}},
	"top node":                {args: argsFixed, fixed: []executor.Resource{grouped("nodes", "metrics.k8s.io", false)}},
	"events":                  {args: argsFixed, fixed: []executor.Resource{core("events", true)}},
	"cluster-info":            {args: argsFixed, fixed: []executor.Resource{core("services", true)}, namespace: "kube-system"},
	"cluster-info dump":       {args: argsFixed, fixed: clusterDump, namespace: "kube-system"},
	"rollout status":          {args: argsTypeNames},
	"rollout history":         {args: argsTypeNames},
	"rollout restart":         {args: argsTypeNames},
	"rollout undo":            {args: argsTypeNames},
	"rollout pause":           {args: argsTypeNames},
	"rollout resume":          {args: argsTypeNames},
	"scale":                   {args: argsTypeNames},
	"delete":                  {args: argsTypeNames},
	"patch":                   {args: argsTypeNames},
	"wait":                    {args: argsTypeNames},
	"apply view-last-applied": {args: argsTypeNames},
	"label":                   {args: argsPairs, pairType: "label"},
	"annotate":                {args: argsPairs, pairType: "annotation"},
	"set env":                 {args: argsEnv},
	"set image":               {args: argsPairs, pairType: "image"},
	"set resources":           {args: argsTypeNames},
	"set subject":             {args: argsTypeNames},
	"set selector":            {args: argsLastIsValue},
	"set serviceaccount":      {args: argsLastIsValue},
	"autoscale":               {args: argsTypeNames, fixed: []executor.Resource{grouped("horizontalpodautoscalers", "autoscaling", true)}},
	"expose":                  {args: argsTypeNames, fixed: []executor.Resource{core("services", true)}},
	"run":                     {args: argsFixed, fixed: []executor.Resource{core("pods", true)}},
	"taint":                   {args: argsTaint},
	"cordon":                  {args: argsFixed, fixed: []executor.Resource{core("nodes", false)}},
	"uncordon":                {args: argsFixed, fixed: []executor.Resource{core("nodes", false)}},
	"drain":                   {args: argsFixed, fixed: []executor.Resource{core("nodes", false), core("pods", true)}},
	"certificate approve":     {args: argsFixed, fixed: []executor.Resource{grouped("certificatesigningrequests", "certificates.k8s.io", false)}},
	"certificate deny":        {args: argsFixed, fixed: []executor.Resource{grouped("certificatesigningrequests", "certificates.k8s.io", false)}},

	"create deployment":             {args: argsFixed, fixed: []executor.Resource{grouped("deployments", "apps", true)}},
	"create job":                    {args: argsFixed, fixed: []executor.Resource{grouped("jobs", "batch", true)}},
	"create cronjob":                {args: argsFixed, fixed: []executor.Resource{grouped("cronjobs", "batch", true)}},
	"create namespace":              {args: argsFixed, fixed: []executor.Resource{core("namespaces", false)}},
	"create quota":                  {args: argsFixed, fixed: []executor.Resource{core("resourcequotas", true)}},
	"create secret generic":         {args: argsFixed, fixed: []executor.Resource{core("secrets", true)}},
	"create secret docker-registry": {args: argsFixed, fixed: []executor.Resource{core("secrets", true)}},
	"create secret tls":             {args: argsFixed, fixed: []executor.Resource{core("secrets", true)}},
	"create configmap":              {args: argsFixed, fixed: []executor.Resource{core("configmaps", true)}},
	"create serviceaccount":         {args: argsFixed, fixed: []executor.Resource{core("serviceaccounts", true)}},
	"create service clusterip":      {args: argsFixed, fixed: []executor.Resource{core("services", true)}},
	"create service externalname":   {args: argsFixed, fixed: []executor.Resource{core("services", true)}},
	"create service loadbalancer":   {args: argsFixed, fixed: []executor.Resource{core("services", true)}},
	"create service nodeport":       {args: argsFixed, fixed: []executor.Resource{core("services", true)}},
	"create clusterrole":            {args: argsFixed, fixed: []executor.Resource{grouped("clusterroles", rbacGroup, false)}},
	"create clusterrolebinding":     {args: argsFixed, fixed: []executor.Resource{grouped("clusterrolebindings", rbacGroup, false)}},
	"create role":                   {args: argsFixed, fixed: []executor.Resource{grouped("roles", rbacGroup, true)}},
	"create rolebinding":            {args: argsFixed, fixed: []executor.Resource{grouped("rolebindings", rbacGroup, true)}},
	"create poddisruptionbudget":    {args: argsFixed, fixed: []executor.Resource{grouped("poddisruptionbudgets", "policy", true)}},
	"create priorityclass":          {args: argsFixed, fixed: []executor.Resource{grouped("priorityclasses", "scheduling.k8s.io", false)}},
	"create ingress":                {args: argsFixed, fixed: []executor.Resource{grouped("ingresses", "networking.k8s.io", true)}},
}

// clusterDump is what kubectl cluster-info dump reads in each namespace.
var clusterDump = []executor.Resource{
	core("nodes", false), core("events", true), core("replicationcontrollers", true), core("services", true),
	grouped("daemonsets", "apps", true), grouped("deployments", "apps", true), grouped("replicasets", "apps", true),
	core("pods", true), {Resource: "pods", Subresource: "log", Namespaced: true},
}

// refusedCommands are kubectl subcommands chat never runs, with the reason.
var refusedCommands = map[string]string{
	"attach":                  "it needs an interactive terminal",
	"exec":                    "it needs an interactive terminal",
	"debug":                   "it needs an interactive terminal",
	"edit":                    "it needs an editor; use patch",
	"apply edit-last-applied": "it needs an editor",
	"port-forward":            "it needs a long-lived local connection",
	"proxy":                   "it needs a long-lived local server",
	"cp":                      "it reads and writes local files",
	"config":                  "it reads and changes a kubeconfig file",
	"plugin":                  "plugins are programs, and kubechat runs none",
	"completion":              "shell completion has no use in chat",
	"kuberc":                  "it reads and changes kubectl's preferences file",
	"alpha":                   "alpha commands are not supported",
	"kustomize":               "it builds manifests from local files or remote repositories",
	"apply":                   "it applies manifests from files (-f, -k); use patch, scale, set or rollout",
	"apply set-last-applied":  "it reads manifests from files",
	"replace":                 "it reads manifests from files",
	"diff":                    "it reads manifests from files",
	"create":                  "it reads manifests from files; name what to create: create deployment|job|secret generic|configmap|...",
	"create secret":           "name the kind of Secret: create secret generic|docker-registry|tls",
	"create service":          "name the kind of Service: create service clusterip|nodeport|loadbalancer|externalname",
	"create token":            "it prints a new credential, which would then be in the chat",
	"auth reconcile":          "it reads RBAC manifests from files",
	"__complete":              "shell completion has no use in chat",
	"__completeNoDesc":        "shell completion has no use in chat",
}

// refusedBare are refused only on their own: their subcommands are listed
// in commands (create deployment, apply view-last-applied).
var refusedBare = map[string]bool{"create": true, "apply": true, "create secret": true, "create service": true}

// Flag kinds.
type flagKind int

const (
	flagAllowed flagKind = iota + 1
	flagRefused
	// flagOutput is -o: checked against outputFormats.
	flagOutput
	// flagStreaming never ends on its own: the policy refuses it.
	flagStreaming
	// flagRaw is --raw: the path is analyzed and the policy must allow raw paths.
	flagRaw
	// flagReads names another object the command reads (--from=secret/x).
	flagReads
)

// flagRule is what one flag may do in chat.
type flagRule struct {
	kind   flagKind
	reason string // for flagRefused
}

var (
	allowed   = flagRule{kind: flagAllowed}
	streaming = flagRule{kind: flagStreaming}
)

func refused(reason string) flagRule { return flagRule{kind: flagRefused, reason: reason} }

const (
	readsFile  = "it reads a local file or URL"
	connection = "kubechat decides how kubectl connects and who it acts as"
	terminal   = "it needs an interactive terminal or standard input"
)

// flags classify every flag of the subcommands in commands, by name.
// Global flags that choose the connection or identity are looked up on
// kubectl's root (connectionFlags), since some subcommands define a local
// flag of the same name with another meaning (create rolebinding --user).
var flags = map[string]flagRule{
	// Reading files and URLs, writing files.
	"filename":         refused(readsFile + " (-f)"),
	"kustomize":        refused(readsFile + ", and may run git (-k)"),
	"from-file":        refused(readsFile),
	"from-env-file":    refused(readsFile),
	"patch-file":       refused(readsFile + "; give the patch inline with -p"),
	"cert":             refused(readsFile),
	"key":              refused(readsFile),
	"output-directory": refused("it writes files on the agent"),
	"profile":          refused("it writes a profile file on the agent"),
	"profile-output":   refused("it writes a profile file on the agent"),
	"kuberc":           refused("it reads a preferences file on the agent"),
	"cache-dir":        refused("it names a directory on the agent"),
	// Terminals and standard input.
	"stdin":            refused(terminal),
	"tty":              refused(terminal),
	"attach":           refused(terminal),
	"leave-stdin-open": refused(terminal),
	"detach-keys":      refused(terminal),
	"rm":               refused("it needs an attached terminal"),
	"interactive":      refused(terminal),
	// Weakening the API server's connection to kubelets.
	"insecure-skip-tls-verify-backend": refused("it turns off TLS verification of the kubelet"),
	// Streams.
	"watch":      streaming,
	"watch-only": streaming,
	"follow":     streaming,
	// Checked one by one.
	"output": {kind: flagOutput},
	"raw":    {kind: flagRaw},
	"from":   {kind: flagReads},
	// Global flags kubechat leaves to the user.
	"namespace": allowed, "all-namespaces": allowed, "request-timeout": allowed, "warnings-as-errors": allowed,
	"match-server-version": allowed, "disable-compression": allowed, "help": allowed,
	// Selection and printing.
	"selector": allowed, "field-selector": allowed, "label-columns": allowed, "labels": allowed, "all": allowed,
	"template": allowed, "allow-missing-template-keys": allowed, "show-managed-fields": allowed, "no-headers": allowed,
	"show-labels": allowed, "show-kind": allowed, "sort-by": allowed, "chunk-size": allowed, "ignore-not-found": allowed,
	"server-print": allowed, "output-watch-events": allowed, "subresource": allowed, "show-events": allowed,
	"recursive": allowed, "quiet": allowed, "list": allowed, "local": allowed,
	// logs.
	"container": allowed, "all-containers": allowed, "all-pods": allowed, "previous": allowed, "tail": allowed,
	"since": allowed, "since-time": allowed, "timestamps": allowed, "limit-bytes": allowed, "prefix": allowed,
	"max-log-requests": allowed, "pod-running-timeout": allowed, "ignore-errors": allowed,
	// top, api-resources, explain, version, auth, events, cluster-info.
	"containers": allowed, "sum": allowed, "show-swap": allowed, "show-capacity": allowed, "use-protocol-buffers": allowed,
	"namespaced": allowed, "verbs": allowed, "api-group": allowed, "cached": allowed, "categories": allowed,
	"api-version": allowed, "max-depth": allowed, "client": allowed, "for": allowed, "types": allowed, "namespaces": allowed,
	// Changes (each needs a policy verb, and RBAC).
	"dry-run": allowed, "field-manager": allowed, "validate": allowed, "save-config": allowed, "record": allowed,
	"overwrite": allowed, "resource-version": allowed, "cascade": allowed, "grace-period": allowed, "force": allowed,
	"now": allowed, "wait": allowed, "timeout": allowed, "replicas": allowed, "current-replicas": allowed,
	"patch": allowed, "type": allowed, "revision": allowed, "to-revision": allowed, "keys": allowed, "resolve": allowed,
	"env": allowed, "limits": allowed, "requests": allowed, "user": allowed, "group": allowed, "serviceaccount": allowed,
	"min": allowed, "max": allowed, "cpu-percent": allowed, "cpu": allowed, "memory": allowed, "name": allowed,
	"port": allowed, "protocol": allowed, "target-port": allowed, "external-ip": allowed, "load-balancer-ip": allowed,
	"session-affinity": allowed, "cluster-ip": allowed, "overrides": allowed, "override-type": allowed,
	"image": allowed, "image-pull-policy": allowed, "restart": allowed, "command": allowed, "expose": allowed,
	"privileged": allowed, "annotations": allowed, "delete-emptydir-data": allowed, "disable-eviction": allowed,
	"ignore-daemonsets": allowed, "pod-selector": allowed, "skip-wait-for-delete-timeout": allowed,
	// create subcommands.
	"from-literal": allowed, "append-hash": allowed, "docker-email": allowed, "docker-password": allowed,
	"docker-server": allowed, "docker-username": allowed, "aggregation-rule": allowed, "non-resource-url": allowed,
	"resource": allowed, "resource-name": allowed, "verb": allowed, "clusterrole": allowed, "role": allowed,
	"annotation": allowed, "class": allowed, "default-backend": allowed, "rule": allowed, "hard": allowed,
	"scopes": allowed, "schedule": allowed, "description": allowed, "global-default": allowed,
	"preemption-policy": allowed, "value": allowed, "min-available": allowed, "max-unavailable": allowed,
	"tcp": allowed, "node-port": allowed, "clusterip": allowed, "external-name": allowed,
}

// connectionFlags are kubectl's global flags that choose where and as
// whom it connects.
var connectionFlags = map[string]bool{
	"as": true, "as-group": true, "as-uid": true, "as-user-extra": true, "kubeconfig": true, "server": true,
	"token": true, "user": true, "username": true, "password": true, "context": true, "cluster": true,
	"certificate-authority": true, "client-certificate": true, "client-key": true, "insecure-skip-tls-verify": true,
	"tls-server-name": true, "proxy-url": true,
}

// outputFormats are the -o values chat may use: kubectl's built-in
// formats, and templates given inline. The *-file forms read a local file.
var outputFormats = map[string]bool{
	"json": true, "yaml": true, "kyaml": true, "wide": true, "name": true,
	"go-template": true, "template": true, "jsonpath": true, "jsonpath-as-json": true,
	"plaintext": true, "plaintext-openapiv2": true,
}

// inlineFormats take their template after "=".
var inlineFormats = map[string]bool{
	"go-template": true, "template": true, "jsonpath": true, "jsonpath-as-json": true, "custom-columns": true,
}

// fileFormats read their template from a file.
var fileFormats = map[string]string{
	"go-template-file": "go-template", "templatefile": "template", "jsonpath-file": "jsonpath",
	"custom-columns-file": "custom-columns",
}
