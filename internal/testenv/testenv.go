// Package testenv runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake
// nodes, all on loopback with free ports. The binaries are built from the Go
// module proxy by "make testbin" into bin/testbin.
//
// Start it once per test binary (see Main) and share it: it takes a few
// seconds to start. Stop shuts the apiserver down before etcd and kills any
// process that does not exit within its grace period; every child also dies
// with the test process (Pdeathsig), so nothing is left behind.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

//go:embed stages.yaml
var stages []byte

// Labels that select the kwok stages in stages.yaml.
const (
	// CrashLoopLabel set to "true" puts a pod's containers into CrashLoopBackOff.
	CrashLoopLabel = "kubechat.test/crashloop"
	// FailLabel set to "true" makes a pod fail.
	FailLabel = "kubechat.test/fail"
	// SucceedLabel set to "true" makes a bare pod run to completion (a Helm test hook).
	SucceedLabel = "kubechat.test/succeed"
	// NodeLabel marks the fake nodes: type=kwok.
	NodeLabel = "type"
)

// Options configure Start.
type Options struct {
	// Nodes is the number of kwok nodes (default 2).
	Nodes int
	// BinDir holds the binaries (default: $KUBECHAT_TESTBIN, or bin/testbin in the module root).
	BinDir string
	// Users are token-authenticated users besides the admin; ConfigFor returns their configs.
	Users []User
}

// User is a token-authenticated user of the test cluster.
type User struct {
	Name   string
	Groups []string
}

// Env is a running control plane.
type Env struct {
	// Dir holds the certificates, kubeconfigs, data and process logs.
	Dir string
	// Config is the admin's connection (group system:masters).
	Config *rest.Config
	// Client is an admin clientset.
	Client kubernetes.Interface
	// Nodes are the names of the kwok nodes.
	Nodes []string

	tokens  map[string]string
	etcdURL string
	// apiBin and apiArgs start the API server again after KillAPIServer.
	apiBin  string
	apiArgs []string
	procs   []*process
	once    sync.Once
}

// BinDir finds the directory of the test binaries.
func BinDir() (string, error) {
	if d := os.Getenv("KUBECHAT_TESTBIN"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin", "testbin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod above the working directory; set KUBECHAT_TESTBIN")
		}
		dir = parent
	}
}

// Start starts the control plane and waits until the API server is ready and
// the kwok nodes are Ready. On error everything started so far is stopped.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 2
	}
	if opts.BinDir == "" {
		if opts.BinDir, err = BinDir(); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, b)); err != nil {
			return nil, fmt.Errorf("testenv: %s is missing from %s: run \"make testbin\"", b, opts.BinDir)
		}
	}
	dir, err := os.MkdirTemp("", "kubechat-testenv-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir, tokens: map[string]string{}}
	defer func() {
		if err != nil {
			_ = e.Stop()
		}
	}()
	if err := e.startEtcd(ctx, opts.BinDir); err != nil {
		return nil, err
	}
	if err := e.startAPIServer(ctx, opts); err != nil {
		return nil, err
	}
	admin := filepath.Join(dir, "admin.kubeconfig")
	if err := WriteKubeconfig(e.Config, admin); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "stages.yaml"), stages, 0o600); err != nil {
		return nil, err
	}
	// kwok serves the kubelet API (container logs) on the nodes' address,
	// from the Logs objects that SetPodLogs creates.
	if err := e.createLogsCRD(ctx); err != nil {
		return nil, err
	}
	kubelet, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	kubeletAddr := fmt.Sprintf("127.0.0.1:%d", kubelet[0])
	for _, p := range []struct {
		name string
		args []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig", admin, "--leader-elect=false", "--secure-port=0",
			"--service-account-private-key-file", filepath.Join(dir, "sa.key"),
			"--root-ca-file", filepath.Join(dir, "certs", "apiserver.crt"),
			"--use-service-account-credentials=false", "--controllers=*,-nodeipam",
			"--node-monitor-grace-period=60s",
		}},
		{"kube-scheduler", []string{"--kubeconfig", admin, "--leader-elect=false", "--secure-port=0"}},
		{"kwok", []string{"--kubeconfig", admin, "--config", filepath.Join(dir, "stages.yaml"),
			"--server-address", kubeletAddr, "--node-ip", "127.0.0.1", "--node-port", fmt.Sprint(kubelet[0]),
			"--enable-crds", "Logs", "--cidr", "10.244.0.0/16"}},
	} {
		if err := e.start(filepath.Join(opts.BinDir, p.name), p.name, p.args...); err != nil {
			return nil, err
		}
	}
	if err := e.createNodes(ctx, opts.Nodes); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Env) startEtcd(ctx context.Context, bin string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	client, peer := ports[0], ports[1]
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	if err := e.start(filepath.Join(bin, "etcd"), "etcd",
		"--name", "default", "--data-dir", filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL, "--unsafe-no-fsync",
		"--listen-metrics-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
	); err != nil {
		return err
	}
	e.etcdURL = clientURL
	return e.poll(ctx, "etcd", 30*time.Second, func() error {
		resp, err := http.Get(clientURL + "/health") //nolint:noctx // short local poll
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

func (e *Env) startAPIServer(ctx context.Context, opts Options) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(e.Dir, "sa.key"), keyPEM, 0o600); err != nil {
		return err
	}
	lines := []string{}
	add := func(name, uid string, groups []string) {
		tok := randomToken()
		e.tokens[name] = tok
		lines = append(lines, fmt.Sprintf("%s,%s,%s,%q", tok, name, uid, strings.Join(groups, ",")))
	}
	add("admin", "admin", []string{"system:masters"})
	for _, u := range opts.Users {
		add(u.Name, u.Name, u.Groups)
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "tokens.csv"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	port := ports[0]
	certs := filepath.Join(e.Dir, "certs")
	// Every request is audited at the Metadata level (who, verb, resource,
	// namespace; no bodies), so tests can prove what reached the server.
	if err := os.WriteFile(filepath.Join(e.Dir, "audit-policy.yaml"), []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	e.apiBin = filepath.Join(opts.BinDir, "kube-apiserver")
	e.apiArgs = []string{
		"--audit-policy-file", filepath.Join(e.Dir, "audit-policy.yaml"),
		"--audit-log-path", e.AuditLog(),
		"--audit-log-format", "json",
		"--audit-log-mode", "blocking",
		"--etcd-servers", e.etcdURL,
		"--cert-dir", certs,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--token-auth-file", filepath.Join(e.Dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", filepath.Join(e.Dir, "sa.key"),
		"--service-account-signing-key-file", filepath.Join(e.Dir, "sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--endpoint-reconciler-type=none",
		// kwok's nodes are reached on their InternalIP (loopback); their
		// host names do not resolve.
		"--kubelet-preferred-address-types=InternalIP",
	}
	if err := e.start(e.apiBin, "kube-apiserver", e.apiArgs...); err != nil {
		return err
	}
	host := fmt.Sprintf("https://127.0.0.1:%d", port)
	var ca []byte
	if err := e.poll(ctx, "kube-apiserver certificate", 30*time.Second, func() error {
		ca, err = os.ReadFile(filepath.Join(certs, "apiserver.crt"))
		return err
	}); err != nil {
		return err
	}
	e.Config = &rest.Config{Host: host, BearerToken: e.tokens["admin"], TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS: 200, Burst: 400}
	if e.Client, err = kubernetes.NewForConfig(e.Config); err != nil {
		return err
	}
	return e.poll(ctx, "kube-apiserver", 60*time.Second, func() error {
		_, err := e.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
}

func (e *Env) createNodes(ctx context.Context, n int) error {
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{NodeLabel: "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
		}}
		if _, err := e.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("testenv: create node %s: %w", name, err)
		}
		e.Nodes = append(e.Nodes, name)
	}
	return e.poll(ctx, "kwok nodes Ready", 60*time.Second, func() error {
		for _, name := range e.Nodes {
			node, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ready := false
			for _, c := range node.Status.Conditions {
				ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
			}
			if !ready {
				return fmt.Errorf("node %s is not Ready", name)
			}
		}
		return nil
	})
}

// KillAPIServer kills the API server at once (SIGKILL), as a crash or an
// outage would; StartAPIServer brings it back on the same address.
func (e *Env) KillAPIServer() error {
	for i, p := range e.procs {
		if p.name == "kube-apiserver" {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			return nil
		}
	}
	return errors.New("testenv: no API server running")
}

// StartAPIServer starts the API server killed by KillAPIServer and waits
// until it is ready.
func (e *Env) StartAPIServer(ctx context.Context) error {
	if err := e.start(e.apiBin, "kube-apiserver", e.apiArgs...); err != nil {
		return err
	}
	return e.poll(ctx, "kube-apiserver", 60*time.Second, func() error {
		_, err := e.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
}

// Kubeconfig is the path of the admin kubeconfig.
func (e *Env) Kubeconfig() string { return filepath.Join(e.Dir, "admin.kubeconfig") }

// ConfigFor returns the connection of a token user from Options.Users, or of "admin".
func (e *Env) ConfigFor(user string) (*rest.Config, error) {
	tok, ok := e.tokens[user]
	if !ok {
		return nil, fmt.Errorf("testenv: no token user %q (declare it in Options.Users)", user)
	}
	c := rest.CopyConfig(e.Config)
	c.BearerToken = tok
	return c, nil
}

// ServiceAccountConfig creates the ServiceAccount namespace/name if needed and
// returns a connection that authenticates with a fresh token for it.
func (e *Env) ServiceAccountConfig(ctx context.Context, namespace, name string) (*rest.Config, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := e.Client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("testenv: create service account %s/%s: %w", namespace, name, err)
	}
	exp := int64(3600)
	tr, err := e.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("testenv: token for %s/%s: %w", namespace, name, err)
	}
	c := rest.CopyConfig(e.Config)
	c.BearerToken = tr.Status.Token
	return c, nil
}

// CreateNamespace creates a namespace and waits for its default
// ServiceAccount, so that pods can be created in it at once.
func (e *Env) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: create namespace %s: %w", name, err)
	}
	return e.poll(ctx, "default service account in "+name, 30*time.Second, func() error {
		_, err := e.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// BindGroupToClusterRole grants the ClusterRole role to the group cluster
// wide, through a ClusterRoleBinding named after the group; binding it
// again is not an error.
func (e *Env) BindGroupToClusterRole(ctx context.Context, group, role string) error {
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: group},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
	}
	if _, err := e.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testenv: bind %s to %s: %w", group, role, err)
	}
	return nil
}

// WaitForPod waits up to a minute for a pod in ns matching selector for which ok is true.
func (e *Env) WaitForPod(ctx context.Context, ns, selector string, ok func(corev1.Pod) bool) (corev1.Pod, error) {
	var found corev1.Pod
	err := e.poll(ctx, fmt.Sprintf("a pod in %s matching %q", ns, selector), time.Minute, func() error {
		pods, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if ok(p) {
				found = p
				return nil
			}
		}
		return fmt.Errorf("%d pods, none in the wanted state", len(pods.Items))
	})
	return found, err
}

// Deployment builds a one-replica Deployment whose pods carry app=name plus podLabels
// (for example CrashLoopLabel).
func Deployment(name string, podLabels map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	maps.Copy(labels, podLabels)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/" + name + ":1.0"}}},
			},
		},
	}
}

// PodReady reports whether p's Ready condition is true.
func PodReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WriteKubeconfig writes c (token or client-certificate auth) as a kubeconfig file.
func WriteKubeconfig(c *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testenv"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: c.BearerToken, ClientCertificateData: c.CertData, ClientKeyData: c.KeyData,
		Impersonate: c.Impersonate.UserName, ImpersonateGroups: c.Impersonate.Groups}
	kc.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: "user", Namespace: "default"}
	kc.CurrentContext = "testenv"
	return clientcmd.WriteToFile(*kc, path)
}

// Stop stops every process, the API server before etcd, and removes Dir.
// Process logs are kept when KUBECHAT_TESTENV_KEEP is set.
func (e *Env) Stop() error {
	var errs []error
	e.once.Do(func() {
		for i := len(e.procs) - 1; i >= 0; i-- {
			errs = append(errs, e.procs[i].stop())
		}
		if os.Getenv("KUBECHAT_TESTENV_KEEP") == "" {
			errs = append(errs, os.RemoveAll(e.Dir))
		}
	})
	return errors.Join(errs...)
}

// Leftovers lists processes whose command line mentions Dir: after Stop there must be none.
func (e *Env) Leftovers() []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), e.Dir) {
			continue
		}
		out = append(out, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// Main starts the control plane, runs the tests and stops it. Use it from TestMain:
//
//	var env *testenv.Env
//	func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{}) }
//
// With -short it starts nothing and *env stays nil; tests that need the
// control plane call Skip.
func Main(m *testing.M, env **Env, opts Options) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	e, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop: %v\n", err)
		code = max(code, 1)
	}
	if left := e.Leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: processes left after stop:\n%s\n", strings.Join(left, "\n"))
		code = max(code, 1)
	}
	os.Exit(code)
}

// Skip skips t when the control plane was not started (go test -short).
func Skip(t testing.TB, env *Env) {
	t.Helper()
	if env == nil {
		t.Skip("needs the test control plane (not started with -short)")
	}
}

func (e *Env) poll(ctx context.Context, what string, timeout time.Duration, f func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		for _, p := range e.procs {
			if err := p.exited(); err != nil {
				return false, err
			}
		}
		last = f()
		return last == nil, nil
	})
	if err != nil {
		if last != nil {
			err = fmt.Errorf("%w (last: %v)", err, last)
		}
		return fmt.Errorf("testenv: waiting for %s: %w", what, err)
	}
	return nil
}

// process is one child of the test process.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (e *Env) start(bin, name string, args ...string) error {
	logPath := filepath.Join(e.Dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group, and killed with us if the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("testenv: start %s: %w", name, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return nil
}

// exited returns an error with the tail of the log if the process has died.
func (p *process) exited() error {
	select {
	case <-p.done:
		b, _ := os.ReadFile(p.log)
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		return fmt.Errorf("%s exited early (%v):\n%s", p.name, p.err, b)
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group and SIGKILL after a grace period.
// An apiserver whose etcd is gone can take over 30 s to exit, hence the kill.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("testenv: %s (pid %d) did not exit", p.name, p.cmd.Process.Pid)
	}
}

// freePorts finds n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testenv: no free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
