package deploy

import (
	"bufio"
	"encoding/base64"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/server"
)

// The shapes below are the few fields of the Kubernetes objects that the
// checks read (decoding with the full k8s.io/api types would pull in the
// whole Kubernetes module tree for a test).

type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type header struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
}

type podTemplate struct {
	Metadata meta    `yaml:"metadata"`
	Spec     podSpec `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  *bool  `yaml:"automountServiceAccountToken"`
	RestartPolicy                 string `yaml:"restartPolicy"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Optional   bool   `yaml:"optional"`
		} `yaml:"secret"`
		ConfigMap *struct {
			Name     string `yaml:"name"`
			Optional bool   `yaml:"optional"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type keyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional bool   `yaml:"optional"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *keyRef `yaml:"configMapRef"`
		SecretRef    *keyRef `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type probe struct {
	GRPC *struct {
		Port    int     `yaml:"port"`
		Service *string `yaml:"service"`
	} `yaml:"grpc"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type deployment struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template podTemplate `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort any    `yaml:"targetPort"` // a number or a container port name
}

type cronJob struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Schedule          string `yaml:"schedule"`
		ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
		JobTemplate       struct {
			Spec struct {
				BackoffLimit          *int        `yaml:"backoffLimit"`
				ActiveDeadlineSeconds *int        `yaml:"activeDeadlineSeconds"`
				Template              podTemplate `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type pdb struct {
	Spec struct {
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas *int `yaml:"minReplicas"`
		MaxReplicas int  `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource struct {
				Name string `yaml:"name"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
	} `yaml:"spec"`
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

// rendered is one kustomize build, decoded.
type rendered struct {
	docs map[string]*yaml.Node // "Kind/name" -> document
	hdrs map[string]header
}

// render builds dir with the kustomize API, as `kustomize build dir` does,
// and decodes the YAML stream it prints.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: as YAML: %v", dir, err)
	}
	r := &rendered{docs: map[string]*yaml.Node{}, hdrs: map[string]header{}}
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: rendered output is not a YAML stream: %v", dir, err)
		}
		var h header
		if err := n.Decode(&h); err != nil {
			t.Fatalf("%s: document header: %v", dir, err)
		}
		if h.Kind == "" || h.APIVersion == "" || h.Metadata.Name == "" {
			t.Fatalf("%s: document without kind, apiVersion or name: %+v", dir, h)
		}
		key := h.Kind + "/" + h.Metadata.Name
		if _, dup := r.docs[key]; dup {
			t.Fatalf("%s: %s twice", dir, key)
		}
		r.docs[key], r.hdrs[key] = &n, h
	}
	return r
}

// generatedSuffix is the content hash kustomize appends to generated
// ConfigMaps and Secrets.
var generatedSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

// kinds lists "Kind/name" with generated names stripped of their hash.
func (r *rendered) kinds() []string {
	var out []string
	for k, h := range r.hdrs {
		if h.Kind == "ConfigMap" || h.Kind == "Secret" {
			k = h.Kind + "/" + generatedSuffix.ReplaceAllString(h.Metadata.Name, "")
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func get[T any](t *testing.T, r *rendered, key string) T {
	t.Helper()
	var v T
	n, ok := r.docs[key]
	if !ok {
		t.Fatalf("no %s in the output (have %v)", key, slices.Sorted(maps.Keys(r.docs)))
	}
	if err := n.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
	return v
}

func (r *rendered) has(kind, name string) bool {
	_, ok := r.docs[kind+"/"+name]
	return ok
}

// cluster-scoped kinds carry no namespace.
var clusterScoped = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true}

func TestOverlays(t *testing.T) {
	tests := []struct {
		dir       string
		namespace string
		kinds     []string
		replicas  int
		hpaMin    int // 0: no HPA
		image     string
	}{
		{
			dir: "k8s/overlays/dev", namespace: "recsys-dev", replicas: 1, image: "recsys:dev",
			kinds: []string{
				"ConfigMap/recsys-config", "CronJob/recsys-train", "Deployment/recsysd", "Deployment/redis",
				"Secret/recsys-tokens", "Service/recsysd", "Service/recsysd-headless", "Service/redis",
				"ServiceAccount/recsys",
			},
		},
		{
			dir: "k8s/overlays/prod", namespace: "recsys", replicas: 3, hpaMin: 3,
			image: "registry.example.com/recsys/recsys:v0.1.0",
			kinds: []string{
				"ConfigMap/recsys-config", "CronJob/recsys-train", "Deployment/recsysd",
				"HorizontalPodAutoscaler/recsysd", "PodDisruptionBudget/recsysd", "Service/recsysd",
				"Service/recsysd-headless", "ServiceAccount/recsys",
			},
		},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			r := render(t, tc.dir)
			if got := r.kinds(); !slices.Equal(got, tc.kinds) {
				t.Errorf("objects:\n got %v\nwant %v", got, tc.kinds)
			}
			for k, h := range r.hdrs {
				if !clusterScoped[h.Kind] && h.Metadata.Namespace != tc.namespace {
					t.Errorf("%s: namespace %q, want %q", k, h.Metadata.Namespace, tc.namespace)
				}
			}
			checkRecsysd(t, r, tc.replicas, tc.image)
			checkServices(t, r)
			checkCronJob(t, r, tc.image)
			checkPodSecurity(t, r)
			checkReferences(t, r)
			if tc.hpaMin > 0 {
				checkScaling(t, r, tc.hpaMin)
			}
			if tc.namespace == "recsys-dev" {
				checkDevRedis(t, r)
				checkDevTokens(t, r)
			}
		})
	}
}

// TestBase renders the base alone: it must stand on its own (overlays only
// adjust it) and carry the HPA and PDB the dev overlay removes.
func TestBase(t *testing.T) {
	r := render(t, "k8s/base")
	checkRecsysd(t, r, 2, "recsys:latest")
	checkServices(t, r)
	checkCronJob(t, r, "recsys:latest")
	checkPodSecurity(t, r)
	checkScaling(t, r, 2)
}

// configData returns the ConfigMap that recsysd's envFrom names.
func configData(t *testing.T, r *rendered, c container) map[string]string {
	t.Helper()
	data := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			maps.Copy(data, get[configMap](t, r, "ConfigMap/"+ef.ConfigMapRef.Name).Data)
		}
	}
	return data
}

func recsysdContainer(t *testing.T, d deployment) container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "recsysd" {
			return c
		}
	}
	t.Fatalf("Deployment/recsysd has no recsysd container")
	return container{}
}

func checkRecsysd(t *testing.T, r *rendered, replicas int, image string) {
	t.Helper()
	d := get[deployment](t, r, "Deployment/recsysd")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("recsysd replicas: got %v, want %d", d.Spec.Replicas, replicas)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("recsysd selector %s=%s does not match the pod labels %v", k, v, d.Spec.Template.Metadata.Labels)
		}
	}
	c := recsysdContainer(t, d)
	if c.Image != image {
		t.Errorf("recsysd image: got %q, want %q", c.Image, image)
	}
	if len(c.Command) != 0 {
		t.Errorf("recsysd command %v overrides the image's /recsysd entrypoint", c.Command)
	}
	for name, p := range map[string]*probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil:
			t.Errorf("recsysd has no %s probe", name)
		case p.GRPC == nil:
			t.Errorf("recsysd %s probe: want a native gRPC probe", name)
		case p.GRPC.Port != 50051:
			t.Errorf("recsysd %s probe: gRPC port %d, want 50051", name, p.GRPC.Port)
		case name == "liveness" && (p.GRPC.Service == nil || *p.GRPC.Service != "liveness"):
			t.Errorf("recsysd liveness probe must ask the \"liveness\" health name, which does not follow Redis")
		case name != "liveness" && p.GRPC.Service != nil && *p.GRPC.Service != "":
			t.Errorf("recsysd %s probe asks %q, want the overall health", name, *p.GRPC.Service)
		}
	}
	cfg := configData(t, r, c)
	drain, err := time.ParseDuration(cfg["RECSYS_DRAIN_TIMEOUT"])
	if err != nil {
		t.Fatalf("RECSYS_DRAIN_TIMEOUT=%q in the recsysd ConfigMap: %v", cfg["RECSYS_DRAIN_TIMEOUT"], err)
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("recsysd needs a preStop sleep so endpoints are removed before SIGTERM")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatalf("recsysd: terminationGracePeriodSeconds not set")
	}
	// The kubelet counts the preStop hook inside the grace period.
	if g := time.Duration(*grace) * time.Second; g <= preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %v must exceed preStop %v + drain timeout %v", g, preStop, drain)
	}
	for _, k := range []string{"RECSYS_REDIS_ADDR", "RECSYS_PREFIX"} {
		if cfg[k] == "" {
			t.Errorf("recsysd ConfigMap lacks %s", k)
		}
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["grpc"] != 50051 || ports["metrics"] != 9090 {
		t.Errorf("recsysd ports: got %v, want grpc 50051 and metrics 9090", ports)
	}
	if addr := cfg["RECSYS_METRICS_ADDR"]; addr != "" && !strings.HasSuffix(addr, ":9090") {
		t.Errorf("RECSYS_METRICS_ADDR=%q but the metrics port is 9090", addr)
	}
	if addr := cfg["RECSYS_GRPC_ADDR"]; addr != "" && !strings.HasSuffix(addr, ":50051") {
		t.Errorf("RECSYS_GRPC_ADDR=%q but the probes and Service use 50051", addr)
	}
	checkAuth(t, d, c, cfg)
}

// checkAuth: recsysd authenticates its callers. The tokens Secret is mounted
// read-only and required, RECSYS_TOKENS_FILE names the file in it, nothing
// turns authentication off, and the rate limits and profile budget parse as
// recsysd parses them.
func checkAuth(t *testing.T, d deployment, c container, cfg map[string]string) {
	t.Helper()
	var mount string
	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/etc/recsys/tokens" && m.ReadOnly {
			mount, volume = m.MountPath, m.Name
		}
	}
	if mount == "" {
		t.Errorf("recsysd: the tokens Secret is not mounted read-only at /etc/recsys/tokens")
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == volume && (v.Secret == nil || generatedSuffix.ReplaceAllString(v.Secret.SecretName, "") != "recsys-tokens" || v.Secret.Optional) {
			t.Errorf("recsysd: volume %q must be the required Secret recsys-tokens", volume)
		}
	}
	if f := cfg["RECSYS_TOKENS_FILE"]; f != mount+"/tokens" {
		t.Errorf("RECSYS_TOKENS_FILE=%q, want %q (the key \"tokens\" of the mounted Secret)", f, mount+"/tokens")
	}
	if v := cfg["RECSYS_INSECURE_NO_AUTH"]; v != "" {
		t.Errorf("RECSYS_INSECURE_NO_AUTH=%q: a deployment must not turn authentication off", v)
	}
	for _, e := range c.Env {
		if e.Name == "RECSYS_INSECURE_NO_AUTH" || e.Name == "RECSYS_TOKENS" {
			t.Errorf("recsysd env %s: callers come from the tokens Secret only", e.Name)
		}
	}
	if _, err := server.ParseRateLimits(cfg["RECSYS_RATE_LIMITS"], server.DefaultRateLimits()); err != nil {
		t.Errorf("RECSYS_RATE_LIMITS: %v", err)
	}
	if b := cfg["RECSYS_PROFILE_BUDGET"]; b != "" {
		if d, err := time.ParseDuration(b); err != nil || d <= 0 {
			t.Errorf("RECSYS_PROFILE_BUDGET=%q: want a positive duration", b)
		}
	}
}

// externalSecrets are made outside git in real environments (see the prod
// overlay); a required reference to them need not be in the output.
var externalSecrets = map[string]bool{"recsys-tokens": true}

// checkDevTokens: the dev overlay's generated tokens Secret is a valid tokens
// file that knows the documented dev token.
func checkDevTokens(t *testing.T, r *rendered) {
	t.Helper()
	var data map[string]string
	for k, h := range r.hdrs {
		if h.Kind == "Secret" && generatedSuffix.ReplaceAllString(h.Metadata.Name, "") == "recsys-tokens" {
			data = get[configMap](t, r, k).Data
		}
	}
	raw, err := base64.StdEncoding.DecodeString(data["tokens"])
	if err != nil {
		t.Fatalf("dev tokens Secret: %v", err)
	}
	tk, err := access.ParseTokens(strings.NewReader(string(raw)), "dev tokens Secret")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := tk.Lookup("dev-token-not-secret"); !ok || c.Roles != access.AllRoles {
		t.Errorf("dev token: %+v %v, want a caller with every role", c, ok)
	}
}

func checkServices(t *testing.T, r *rendered) {
	t.Helper()
	d := get[deployment](t, r, "Deployment/recsysd")
	c := recsysdContainer(t, d)
	named := map[string]bool{}
	for _, p := range c.Ports {
		named[p.Name] = true
	}
	for _, name := range []string{"recsysd", "recsysd-headless"} {
		s := get[service](t, r, "Service/"+name)
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service/%s has no selector", name)
		}
		for k, v := range s.Spec.Selector {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("Service/%s selector %s=%s matches no recsysd pod", name, k, v)
			}
		}
		hasGRPC := false
		for _, p := range s.Spec.Ports {
			if tp, ok := p.TargetPort.(string); ok && !named[tp] {
				t.Errorf("Service/%s port %s targets %q, which the container does not name", name, p.Name, tp)
			}
			if p.Name == "grpc" && p.Port == 50051 {
				hasGRPC = true
			}
		}
		if !hasGRPC {
			t.Errorf("Service/%s does not expose grpc on 50051", name)
		}
	}
	if s := get[service](t, r, "Service/recsysd-headless"); s.Spec.ClusterIP != "None" {
		t.Errorf("Service/recsysd-headless clusterIP %q, want None", s.Spec.ClusterIP)
	}
	if s := get[service](t, r, "Service/recsysd"); !slices.ContainsFunc(s.Spec.Ports, func(p servicePort) bool { return p.Name == "metrics" && p.Port == 9090 }) {
		t.Errorf("Service/recsysd does not expose metrics on 9090")
	}
}

func checkCronJob(t *testing.T, r *rendered, image string) {
	t.Helper()
	cj := get[cronJob](t, r, "CronJob/recsys-train")
	s := cj.Spec
	if s.ConcurrencyPolicy != "Forbid" {
		t.Errorf("recsys-train concurrencyPolicy %q, want Forbid", s.ConcurrencyPolicy)
	}
	if s.Schedule == "" {
		t.Errorf("recsys-train has no schedule")
	}
	if b := s.JobTemplate.Spec.BackoffLimit; b == nil || *b < 0 {
		t.Errorf("recsys-train backoffLimit %v, want set", b)
	}
	if a := s.JobTemplate.Spec.ActiveDeadlineSeconds; a == nil || *a <= 0 {
		t.Errorf("recsys-train activeDeadlineSeconds %v, want > 0", a)
	}
	pod := s.JobTemplate.Spec.Template.Spec
	if pod.RestartPolicy != "Never" && pod.RestartPolicy != "OnFailure" {
		t.Errorf("recsys-train restartPolicy %q", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("recsys-train: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != image {
		t.Errorf("recsys-train image %q, want the recsysd image %q", c.Image, image)
	}
	if !slices.Equal(c.Command, []string{"/recsys-train"}) {
		t.Errorf("recsys-train command %v, want [/recsys-train]", c.Command)
	}
	// $(VAR) in args is expanded by the kubelet only when VAR is defined;
	// otherwise the literal text is passed on.
	defined := configData(t, r, c)
	for _, e := range c.Env {
		defined[e.Name] = "set"
	}
	ref := regexp.MustCompile(`\$\(([A-Z0-9_]+)\)`)
	hasRedis := false
	for _, a := range c.Args {
		for _, m := range ref.FindAllStringSubmatch(a, -1) {
			if _, ok := defined[m[1]]; !ok {
				t.Errorf("recsys-train arg %q refers to $(%s), which is not defined", a, m[1])
			}
		}
		hasRedis = hasRedis || strings.HasPrefix(a, "--redis-addr")
	}
	if !hasRedis {
		t.Errorf("recsys-train args %v lack --redis-addr", c.Args)
	}
}

// podSpecs returns every pod template of the output by owner.
func podSpecs(t *testing.T, r *rendered) map[string]podSpec {
	t.Helper()
	out := map[string]podSpec{}
	for k, h := range r.hdrs {
		switch h.Kind {
		case "Deployment":
			out[k] = get[deployment](t, r, k).Spec.Template.Spec
		case "CronJob":
			out[k] = get[cronJob](t, r, k).Spec.JobTemplate.Spec.Template.Spec
		case "Pod", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
			t.Errorf("%s: unexpected workload kind; teach the test to read it", k)
		}
	}
	return out
}

func checkPodSecurity(t *testing.T, r *rendered) {
	t.Helper()
	for owner, pod := range podSpecs(t, r) {
		if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", owner)
		}
		if pod.SecurityContext.RunAsUser != nil && *pod.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s: runs as uid 0", owner)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token it does not need", owner)
		}
		for _, c := range pod.Containers {
			sc := c.SecurityContext
			switch {
			case sc == nil:
				t.Errorf("%s/%s: no securityContext", owner, c.Name)
				continue
			case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
				t.Errorf("%s/%s: root filesystem is writable", owner, c.Name)
			case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
				t.Errorf("%s/%s: allowPrivilegeEscalation is not false", owner, c.Name)
			case !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || len(sc.Capabilities.Add) > 0:
				t.Errorf("%s/%s: capabilities drop %v add %v, want drop [ALL] add none", owner, c.Name, sc.Capabilities.Drop, sc.Capabilities.Add)
			}
			for _, res := range []string{"cpu", "memory"} {
				if c.Resources.Requests[res] == "" || c.Resources.Limits[res] == "" {
					t.Errorf("%s/%s: %s request %q limit %q, want both", owner, c.Name, res, c.Resources.Requests[res], c.Resources.Limits[res])
				}
			}
		}
	}
}

// checkReferences: a ConfigMap or Secret a pod needs exists in the output,
// unless the reference is optional (Secrets made outside git).
func checkReferences(t *testing.T, r *rendered) {
	t.Helper()
	need := func(owner, kind string, ref *keyRef) {
		if ref != nil && !ref.Optional && !r.has(kind, ref.Name) && !(kind == "Secret" && externalSecrets[ref.Name]) {
			t.Errorf("%s needs %s/%s, which is not in the output and not optional", owner, kind, ref.Name)
		}
	}
	for owner, pod := range podSpecs(t, r) {
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				need(owner, "Secret", &keyRef{Name: v.Secret.SecretName, Optional: v.Secret.Optional})
			}
			if v.ConfigMap != nil {
				need(owner, "ConfigMap", &keyRef{Name: v.ConfigMap.Name, Optional: v.ConfigMap.Optional})
			}
		}
		for _, c := range pod.Containers {
			for _, ef := range c.EnvFrom {
				need(owner, "ConfigMap", ef.ConfigMapRef)
				need(owner, "Secret", ef.SecretRef)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil {
					need(owner, "ConfigMap", e.ValueFrom.ConfigMapKeyRef)
					need(owner, "Secret", e.ValueFrom.SecretKeyRef)
				}
			}
			mounted := map[string]bool{}
			for _, v := range pod.Volumes {
				mounted[v.Name] = true
			}
			for _, m := range c.VolumeMounts {
				if !mounted[m.Name] {
					t.Errorf("%s/%s mounts volume %q, which the pod does not define", owner, c.Name, m.Name)
				}
			}
		}
	}
}

func checkScaling(t *testing.T, r *rendered, min int) {
	t.Helper()
	d := get[deployment](t, r, "Deployment/recsysd")
	h := get[hpa](t, r, "HorizontalPodAutoscaler/recsysd")
	if h.Spec.ScaleTargetRef.Kind != "Deployment" || !r.has("Deployment", h.Spec.ScaleTargetRef.Name) {
		t.Errorf("HPA targets %s/%s, which is not in the output", h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != min || h.Spec.MaxReplicas < min {
		t.Errorf("HPA min %v max %d, want min %d <= max", h.Spec.MinReplicas, h.Spec.MaxReplicas, min)
	}
	if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource.Name != "cpu" {
		t.Errorf("HPA metrics %+v, want CPU", h.Spec.Metrics)
	}
	p := get[pdb](t, r, "PodDisruptionBudget/recsysd")
	if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
		t.Errorf("PDB sets neither minAvailable nor maxUnavailable")
	}
	if len(p.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("PDB has no selector")
	}
	for k, v := range p.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("PDB selector %s=%s matches no recsysd pod", k, v)
		}
	}
}

// checkDevRedis: the dev recsysd reaches the dev Redis by its Service.
func checkDevRedis(t *testing.T, r *rendered) {
	t.Helper()
	c := recsysdContainer(t, get[deployment](t, r, "Deployment/recsysd"))
	addr := configData(t, r, c)["RECSYS_REDIS_ADDR"]
	s := get[service](t, r, "Service/redis")
	redis := get[deployment](t, r, "Deployment/redis")
	if len(s.Spec.Ports) != 1 || addr != "redis:"+strconv.Itoa(s.Spec.Ports[0].Port) {
		t.Errorf("RECSYS_REDIS_ADDR=%q, want the redis Service (ports %+v)", addr, s.Spec.Ports)
	}
	for k, v := range s.Spec.Selector {
		if redis.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service/redis selector %s=%s matches no redis pod", k, v)
		}
	}
}

// TestDockerfile reads the Dockerfile (no Docker engine here to build it)
// and checks what the manifests rely on: the binaries, the user and the
// entrypoint of the final stage.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages [][]string // instructions per stage, continuation lines joined
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		ins := cur.String()
		cur.Reset()
		if strings.HasPrefix(ins, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], ins)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stages", len(stages))
	}
	build, final := strings.Join(stages[0], "\n"), stages[len(stages)-1]
	for _, want := range []string{"CGO_ENABLED=0", "go build", "./cmd/..."} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	for _, want := range []string{"USER 65532:65532", `ENTRYPOINT ["/recsysd"]`} {
		if !slices.Contains(final, want) {
			t.Errorf("final stage lacks %q: %q", want, final)
		}
	}
	if !strings.Contains(final[0], "distroless/static") {
		t.Errorf("final stage is %q, want distroless/static", final[0])
	}
	// Every command directory is a binary in the image (./cmd/... builds
	// them all); the manifests run /recsysd and /recsys-train.
	dirs, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(dirs, func(d os.DirEntry) bool { return d.Name() == "recsysd" }) {
		t.Errorf("no cmd/recsysd: the image's entrypoint would not exist")
	}
}
