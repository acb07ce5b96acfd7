#!/usr/bin/env bash
# Builds the real binaries the demo and the tests run, from the Go module
# proxy, into bin/testbin. Each is built in a throwaway module and reused
# when bin/testbin already holds it at the pinned version.
#
#   hack/testbin.sh demo    what "make run" needs: etcd, kube-apiserver,
#                           kube-controller-manager, kube-scheduler, kwok
#   hack/testbin.sh test    the demo's, and what only tests use: kubectl,
#                           the helm CLI, Alertmanager, the flux CLI, the
#                           Flux CRDs and the Argo CD CRDs
#   hack/testbin.sh lint    staticcheck
#   hack/testbin.sh [all]   all of the above
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
STAGING_VERSION=${STAGING_VERSION:-v0.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
# Keep in step with helm.sh/helm/v3 in go.mod.
HELM_VERSION=${HELM_VERSION:-v3.22.0}
STATICCHECK_VERSION=${STATICCHECK_VERSION:-v0.8.2}
# v0.28.x builds from the module proxy; later releases embed UI assets the
# module does not ship.
ALERTMANAGER_VERSION=${ALERTMANAGER_VERSION:-v0.28.1}
# The Flux controllers whose CRDs the flux executor's tests install; keep in
# step with github.com/fluxcd/{kustomize,source}-controller/api in go.mod.
FLUX_KUSTOMIZE_VERSION=${FLUX_KUSTOMIZE_VERSION:-v1.9.6}
FLUX_SOURCE_VERSION=${FLUX_SOURCE_VERSION:-v1.9.0}
# The flux CLI whose "flux diff kustomization" the flux executor's outcome is
# compared with.
FLUX_CLI_VERSION=${FLUX_CLI_VERSION:-v2.9.5}
# The Argo CD release whose Application, ApplicationSet and AppProject CRDs
# the argocd executor's and source's tests install.
ARGOCD_VERSION=${ARGOCD_VERSION:-v3.6.1}

root=$(cd "$(dirname "$0")/.." && pwd)
out=${TESTBIN:-$root/bin/testbin}
work=$out/.build
mkdir -p "$out" "$work"

stamp() { cat "$out/.$1.version" 2>/dev/null || true; }
fresh() { [ -x "$out/$1" ] && [ "$(stamp "$1")" = "$2" ]; }

# step says what is being built, with the time since the script started.
step() { echo "testbin: [$(($(date +%s) - started))s] $*"; }
started=$(date +%s)

# build_k8s BINARY... builds those Kubernetes commands at K8S_VERSION in one
# go build, which compiles what they share once and in parallel. The
# control-plane binaries report K8S_VERSION, as a release build does (Helm
# checks a chart's kubeVersion against it); kubectl stays unstamped, like
# the kubectl built into the agent, so that the two print the same.
build_k8s() {
	local bins=() b stamp=$K8S_VERSION ldflags=()
	if [ "$1" != kubectl ]; then
		local minor=${K8S_VERSION#v1.}
		minor=${minor%%.*}
		stamp="$K8S_VERSION (version stamped)"
		ldflags=(-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean")
	fi
	for b in "$@"; do
		fresh "$b" "$stamp" || bins+=("$b")
	done
	[ ${#bins[@]} -eq 0 ] && return 0
	local dir=$work/kubernetes
	rm -rf "$dir" && mkdir -p "$dir"
	cd "$dir"
	go mod init testbin.local/kubernetes >/dev/null 2>&1
	# k8s.io/kubernetes replaces its staging modules with ./staging paths; a
	# consumer must pin each one to the matching published version instead.
	local mod
	mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	{
		echo "require k8s.io/kubernetes $K8S_VERSION"
		sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$STAGING_VERSION"'#p' "$mod"
	} >>go.mod
	# Where the agent and Kubernetes use the same module, take the agent's
	# version (never older than Kubernetes' own): what both compile is then
	# compiled once, for these binaries and for the agent "make run" builds.
	awk '/^require \(/ { r = 1; next } r && /^\)/ { r = 0 } r && NF >= 2 && $1 !~ /^\/\// { print "require " $1 " " $2 } /^require [^(]/ { print "require " $2 " " $3 }' "$root/go.mod" >>go.mod
	printf 'package main\nimport (\n_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n_ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n_ "k8s.io/kubectl/pkg/cmd"\n_ "k8s.io/component-base/cli"\n)\nfunc main() {}\n' >tools.go
	# Staging modules that were never published at this version are dropped.
	go mod tidy >/dev/null 2>&1 || true
	go mod tidy
	local pkgs=() estimate="about 2 min"
	for b in "${bins[@]}"; do
		pkgs+=("k8s.io/kubernetes/cmd/$b")
		[ "$b" = kube-apiserver ] && estimate="about 14 min"
	done
	step "building ${bins[*]} $K8S_VERSION (first run only, $estimate on 2 cores)"
	mkdir -p "$work/k8s-out"
	# Without -trimpath, as "go run" builds the agent, so that they share.
	go build "${ldflags[@]}" -o "$work/k8s-out/" "${pkgs[@]}"
	for b in "${bins[@]}"; do
		mv "$work/k8s-out/$b" "$out/$b"
		echo "$stamp" >"$out/.$b.version"
	done
}

# build_cmd NAME VERSION PACKAGE ESTIMATE [go build flags...] builds the
# main package PACKAGE at module version VERSION into $out/NAME, in a
# throwaway module; ESTIMATE is said while it builds.
build_cmd() {
	local name=$1 version=$2 pkg=$3 estimate=$4
	shift 4
	fresh "$name" "$version" && return 0
	local dir=$work/$name
	rm -rf "$dir" && mkdir -p "$dir"
	cd "$dir"
	go mod init "testbin.local/$name" >/dev/null 2>&1
	# go get on the command's package records the sums of everything it imports.
	go get "$pkg@$version" >/dev/null
	step "building $name $version (first run only, $estimate on 2 cores)"
	go build -trimpath "$@" -o "$out/$name" "$pkg"
	echo "$version" >"$out/.$name.version"
}

build_etcd() { build_cmd etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "about 3 min"; }
build_kwok() { build_cmd kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok "about 3 min"; }
build_helm() {
	build_cmd helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "about 3 min" \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}
build_alertmanager() {
	build_cmd alertmanager "$ALERTMANAGER_VERSION" github.com/prometheus/alertmanager/cmd/alertmanager "about 2 min"
}
build_staticcheck() {
	build_cmd staticcheck "$STATICCHECK_VERSION" honnef.co/go/tools/cmd/staticcheck "about 1 min"
}

# fetch_flux_crds copies the Kustomization and GitRepository CRDs that the
# controllers' own modules ship (config/crd/bases) into crds/flux.
fetch_flux_crds() {
	local want="kustomize-controller@$FLUX_KUSTOMIZE_VERSION source-controller@$FLUX_SOURCE_VERSION"
	[ "$(cat "$out/crds/flux/.version" 2>/dev/null || true)" = "$want" ] && return 0
	step "fetching the Flux CRDs ($want)"
	rm -rf "$out/crds/flux" && mkdir -p "$out/crds/flux"
	local dir
	dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
	cp "$dir/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$out/crds/flux/"
	dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/source-controller@$FLUX_SOURCE_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
	cp "$dir/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml" "$out/crds/flux/"
	chmod u+w "$out/crds/flux/"*.yaml
	echo "$want" >"$out/crds/flux/.version"
}

# fetch_argocd_crds copies the CRDs that Argo CD's module ships
# (manifests/crds) into crds/argocd. The module requires a newer Go than
# ours, so "go mod download" fetches its zip into the module cache but
# refuses to extract it; the CRDs are taken from the zip (hack/modzip: a
# fresh machine may have no unzip).
fetch_argocd_crds() {
	[ "$(cat "$out/crds/argocd/.version" 2>/dev/null || true)" = "$ARGOCD_VERSION" ] && return 0
	step "fetching the Argo CD CRDs ($ARGOCD_VERSION)"
	rm -rf "$out/crds/argocd" && mkdir -p "$out/crds/argocd"
	local zip
	# The download reports the Go version error (and fails) after it stored the zip.
	zip=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | sed -n 's/.*"Zip": "\(.*\)".*/\1/p') || true
	[ -f "$zip" ] || { echo "testbin: Argo CD $ARGOCD_VERSION: no module zip" >&2; return 1; }
	(cd "$root" && go run ./hack/modzip "$zip" "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION/manifests/crds/*-crd.yaml" "$out/crds/argocd")
	chmod u+w "$out/crds/argocd/"*.yaml
	echo "$ARGOCD_VERSION" >"$out/crds/argocd/.version"
}

# build_flux builds the flux CLI from its module. The module zip lacks the
# install manifests that "make build" bundles from the controllers' GitHub
# releases (cmd/flux/manifests, embedded for "flux install"); "flux diff"
# does not use them, so a placeholder satisfies the embed, and "flux install"
# from this build has nothing to install.
build_flux() {
	fresh flux "$FLUX_CLI_VERSION" && return 0
	local dir=$work/flux2 mod
	mod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/flux2/v2@$FLUX_CLI_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
	rm -rf "$dir" && cp -r "$mod" "$dir" && chmod -R u+w "$dir"
	mkdir -p "$dir/cmd/flux/manifests"
	printf '# Not bundled: this flux build is for "flux diff" in tests.\n' >"$dir/cmd/flux/manifests/placeholder.yaml"
	step "building flux $FLUX_CLI_VERSION (first run only, about 14 min on 2 cores)"
	(cd "$dir" && go build -trimpath -ldflags "-X main.VERSION=${FLUX_CLI_VERSION#v}" -o "$out/flux" ./cmd/flux)
	echo "$FLUX_CLI_VERSION" >"$out/.flux.version"
}

demo() {
	build_etcd
	build_k8s kube-apiserver kube-controller-manager kube-scheduler
	build_kwok
}
tests() {
	demo
	build_k8s kubectl
	build_helm
	build_alertmanager
	fetch_flux_crds
	fetch_argocd_crds
	build_flux
}

case "${1:-all}" in
demo) demo ;;
test) tests ;;
lint) build_staticcheck ;;
all) tests && build_staticcheck ;;
*)
	echo "usage: $0 [demo|test|lint|all]" >&2
	exit 2
	;;
esac
step "${1:-all} binaries ready in $out"
