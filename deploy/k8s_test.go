package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// k8sDoc is one YAML document of deploy/k8s: its header, and the whole
// document to decode by kind.
type k8sDoc struct {
	file       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	node *yaml.Node
}

func (d k8sDoc) String() string { return d.file + ": " + d.Kind + " " + d.Metadata.Name }

type k8sWorkload struct {
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom any    `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
}

type k8sProbe struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	GRPC *struct {
		Port int `yaml:"port"`
	} `yaml:"grpc"`
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sHPA struct {
	Spec struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
	} `yaml:"spec"`
}

type k8sConfigMap struct {
	Data map[string]string `yaml:"data"`
}

type k8sKustomization struct {
	Resources []string `yaml:"resources"`
}

// readK8s parses every YAML document of the files (name → content).
func readK8s(files map[string][]byte) ([]k8sDoc, error) {
	var docs []k8sDoc
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		dec := yaml.NewDecoder(bytes.NewReader(files[name]))
		for {
			var node yaml.Node
			err := dec.Decode(&node)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			d := k8sDoc{file: name, node: &node}
			if err := node.Decode(&d); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// k8sFiles reads the manifests under deploy/k8s (not helm/, which holds a
// chart's values).
func k8sFiles(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "deploy", "k8s")
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		if files[filepath.Base(p)], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// portMatches reports whether a Service targetPort or probe port (number
// or name) is one of c's ports with protocol proto.
func (c k8sContainer) portMatches(port any, proto string) bool {
	if proto == "" {
		proto = "TCP"
	}
	for _, p := range c.Ports {
		pp := p.Protocol
		if pp == "" {
			pp = "TCP"
		}
		if pp == proto && (fmt.Sprint(port) == p.Name || fmt.Sprint(port) == strconv.Itoa(p.ContainerPort)) {
			return true
		}
	}
	return false
}

// checkK8s returns every problem with the manifests: missing kind or
// apiVersion, flags or variables a daemon does not accept, ports that do
// not line up between Services, probes and containers, and references to
// objects that are not there.
func checkK8s(docs []k8sDoc) []error {
	var errs []error
	add := func(d k8sDoc, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%v: "+format, append([]any{d}, a...)...))
	}
	configMaps := map[string]map[string]string{}
	workloads := map[string]k8sWorkload{} // by kind/name
	var files []string
	for _, d := range docs {
		if !slices.Contains(files, d.file) {
			files = append(files, d.file)
		}
		if d.APIVersion == "" || d.Kind == "" {
			add(d, "no apiVersion or kind")
		}
		if d.Metadata.Name == "" && d.Kind != "Kustomization" {
			add(d, "no metadata.name")
		}
		switch d.Kind {
		case "ConfigMap":
			var cm k8sConfigMap
			if err := d.node.Decode(&cm); err != nil {
				add(d, "%v", err)
			}
			configMaps[d.Metadata.Name] = cm.Data
		case "Deployment", "StatefulSet":
			var w k8sWorkload
			if err := d.node.Decode(&w); err != nil {
				add(d, "%v", err)
			}
			workloads[d.Kind+"/"+d.Metadata.Name] = w
		}
	}
	consumers := map[string][]string{} // ConfigMap → daemons loading it
	for _, d := range docs {
		switch d.Kind {
		case "Deployment", "StatefulSet":
			w := workloads[d.Kind+"/"+d.Metadata.Name]
			for k, v := range w.Spec.Selector.MatchLabels {
				if w.Spec.Template.Metadata.Labels[k] != v {
					add(d, "selector %s=%s does not match the pod labels", k, v)
				}
			}
			for _, c := range w.Spec.Template.Spec.Containers {
				errs = append(errs, checkK8sContainer(d, w, c, configMaps, consumers)...)
			}
		case "Service":
			var s k8sService
			if err := d.node.Decode(&s); err != nil {
				add(d, "%v", err)
				continue
			}
			var target *k8sWorkload
			for _, w := range workloads {
				if len(s.Spec.Selector) > 0 && mapContains(w.Spec.Template.Metadata.Labels, s.Spec.Selector) {
					target = &w
				}
			}
			if target == nil {
				add(d, "selector %v matches no Deployment or StatefulSet", s.Spec.Selector)
				continue
			}
			for _, p := range s.Spec.Ports {
				if !slices.ContainsFunc(target.Spec.Template.Spec.Containers, func(c k8sContainer) bool { return c.portMatches(p.TargetPort, p.Protocol) }) {
					add(d, "port %s targets %v/%s, which no container serves", p.Name, p.TargetPort, p.Protocol)
				}
			}
		case "HorizontalPodAutoscaler":
			var h k8sHPA
			if err := d.node.Decode(&h); err != nil {
				add(d, "%v", err)
				continue
			}
			ref := h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
			w, ok := workloads[ref]
			if !ok {
				add(d, "scales %s, which is not here", ref)
			}
			for _, c := range w.Spec.Template.Spec.Containers {
				if c.Resources.Requests["cpu"] == "" {
					add(d, "scales on CPU, but container %s requests no CPU", c.Name)
				}
			}
			if h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= h.Spec.MinReplicas {
				add(d, "replicas %d to %d", h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
		case "Kustomization":
			var k k8sKustomization
			if err := d.node.Decode(&k); err != nil {
				add(d, "%v", err)
				continue
			}
			for _, f := range files {
				if f != d.file && !slices.Contains(k.Resources, f) {
					add(d, "does not list %s", f)
				}
			}
			for _, r := range k.Resources {
				if !slices.Contains(files, r) {
					add(d, "lists %s, which is not here", r)
				}
			}
		}
	}
	// A shared ConfigMap may carry variables for some daemons only, but
	// each must be read by one of the daemons that load it.
	for cm, ds := range consumers {
		for k, v := range configMaps[cm] {
			readers := 0
			for _, dm := range ds {
				if _, ok := accepted[dm].env[k]; ok {
					readers++
					if err := accepted[dm].checkEnv(k, v); err != nil {
						errs = append(errs, fmt.Errorf("ConfigMap %s: %w", cm, err))
					}
				}
			}
			if readers == 0 {
				errs = append(errs, fmt.Errorf("ConfigMap %s: %s is read by none of %v", cm, k, ds))
			}
		}
	}
	return errs
}

func mapContains(m, sub map[string]string) bool {
	for k, v := range sub {
		if m[k] != v {
			return false
		}
	}
	return true
}

// checkK8sContainer checks one container: a shardns daemon's flags and
// variables against the binary, its probes against its ports, and the
// ConfigMaps it loads.
func checkK8sContainer(d k8sDoc, w k8sWorkload, c k8sContainer, configMaps map[string]map[string]string, consumers map[string][]string) []error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%v: container %s: "+format, append([]any{d, c.Name}, a...)...))
	}
	for _, p := range []*k8sProbe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		switch {
		case p == nil:
		case p.GRPC != nil && !c.portMatches(p.GRPC.Port, "TCP"):
			add("gRPC probe on port %d, which it does not serve", p.GRPC.Port)
		case p.HTTPGet != nil && !c.portMatches(p.HTTPGet.Port, "TCP"):
			add("HTTP probe on port %v, which it does not serve", p.HTTPGet.Port)
		case p.TCPSocket != nil && !c.portMatches(p.TCPSocket.Port, "TCP"):
			add("TCP probe on port %v, which it does not serve", p.TCPSocket.Port)
		}
	}
	if c.ReadinessProbe == nil {
		add("no readiness probe")
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		if _, ok := configMaps[ef.ConfigMapRef.Name]; !ok {
			add("loads ConfigMap %s, which is not here", ef.ConfigMapRef.Name)
		}
	}
	if len(c.Command) == 0 || !slices.Contains(daemons, filepath.Base(c.Command[0])) {
		return errs // not a shardns daemon (Redis)
	}
	daemon := filepath.Base(c.Command[0])
	fs := accepted[daemon]
	args := append(slices.Clone(c.Command[1:]), c.Args...)
	for _, err := range fs.checkArgs(args) {
		add("%v", err)
	}
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			consumers[ef.ConfigMapRef.Name] = append(consumers[ef.ConfigMapRef.Name], daemon)
			for k, v := range configMaps[ef.ConfigMapRef.Name] {
				if _, ok := fs.env[k]; ok {
					env[k] = v
				}
			}
		}
	}
	for _, e := range c.Env {
		if err := fs.checkEnv(e.Name, e.Value); err != nil {
			add("%v", err)
		}
		env[e.Name] = e.Value
	}
	if err := checkK8sConfigFile(daemon, w, c, args, env, configMaps); err != nil {
		add("%v", err)
	}
	listen := portOf(fs.values(env, args)["listen"])
	if listen == "" || !c.portMatches(listen, "TCP") {
		add("listens on port %q, which is not a container port", listen)
	}
	for _, p := range []*k8sProbe{c.ReadinessProbe, c.LivenessProbe} {
		if p != nil && p.Exec != nil {
			cmd := p.Exec.Command
			if len(cmd) < 3 || filepath.Base(cmd[0]) != "healthcheck" {
				add("exec probe %q is not the image's healthcheck", cmd)
			} else if err := checkProbe(append([]string{"CMD", "healthcheck"}, cmd[1:]...), listen); err != nil {
				add("probe %q: %v", cmd, err)
			}
		}
	}
	return errs
}

// TestK8sManifests checks deploy/k8s against the binaries and itself, and
// the shape docs/operations.md describes: dnsd on 53 UDP and TCP with an autoscaler,
// on the Redis Cluster; the queue's Redis with deploy/redis/queue.conf.
func TestK8sManifests(t *testing.T) {
	files := k8sFiles(t)
	docs, err := readK8s(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkK8s(docs) {
		t.Error(err)
	}
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.Kind+"/"+d.Metadata.Name]++
		switch {
		case d.Kind == "Service" && d.Metadata.Name == "shardns-dnsd":
			var s k8sService
			d.node.Decode(&s)
			var got []string
			for _, p := range s.Spec.Ports {
				got = append(got, fmt.Sprintf("%d/%s->%v", p.Port, p.Protocol, p.TargetPort))
			}
			slices.Sort(got)
			if want := []string{"53/TCP->5353", "53/UDP->5353"}; !slices.Equal(got, want) {
				t.Errorf("dnsd Service ports %v, want %v", got, want)
			}
		case d.Kind == "ConfigMap" && d.Metadata.Name == "shardns-config":
			var cm k8sConfigMap
			d.node.Decode(&cm)
			if cm.Data["SHARDNS_REDIS_CLUSTER"] != "true" || cm.Data["SHARDNS_REDIS"] == "" {
				t.Errorf("the cache is not the Redis Cluster: %v", cm.Data)
			}
		case d.Kind == "ConfigMap" && d.Metadata.Name == "shardns-file":
			var cm k8sConfigMap
			d.node.Decode(&cm)
			want, err := os.ReadFile(exampleConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["shardns.yaml"] != string(want) {
				t.Errorf("ConfigMap shardns-file differs from deploy/shardns.yaml")
			}
		case d.Kind == "ConfigMap" && d.Metadata.Name == "shardns-queue-conf":
			var cm k8sConfigMap
			d.node.Decode(&cm)
			want, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "redis", "queue.conf"))
			if err != nil {
				t.Fatal(err)
			}
			if cm.Data["queue.conf"] != string(want) {
				t.Errorf("ConfigMap shardns-queue-conf differs from deploy/redis/queue.conf")
			}
		}
	}
	for _, want := range []string{
		"Deployment/shardns-dnsd", "Service/shardns-dnsd", "HorizontalPodAutoscaler/shardns-dnsd",
		"Deployment/shardns-resolverd", "Service/shardns-resolverd",
		"Deployment/shardns-cacheapi", "Service/shardns-cacheapi",
		"StatefulSet/shardns-queue", "ConfigMap/shardns-config", "ConfigMap/shardns-file", "Kustomization/",
	} {
		if kinds[want] != 1 {
			t.Errorf("%d of %s, want 1", kinds[want], want)
		}
	}
}

// TestK8sHelmValues checks the Redis Cluster chart values set what the
// cache needs.
func TestK8sHelmValues(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "helm", "redis-cluster.values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		UsePassword               *bool  `yaml:"usePassword"`
		ExistingSecret            string `yaml:"existingSecret"`
		ExistingSecretPasswordKey string `yaml:"existingSecretPasswordKey"`
		Cluster                   struct {
			Nodes    int `yaml:"nodes"`
			Replicas int `yaml:"replicas"`
		} `yaml:"cluster"`
		Redis struct {
			Configmap string `yaml:"configmap"`
		} `yaml:"redis"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.UsePassword == nil || !*v.UsePassword || v.ExistingSecret != "shardns-redis" || v.ExistingSecretPasswordKey != "password" {
		t.Error("the cluster does not ask for the password of Secret shardns-redis (key password), which the daemons send")
	}
	if masters := v.Cluster.Nodes / (1 + v.Cluster.Replicas); masters < 3 || v.Cluster.Replicas < 1 {
		t.Errorf("cluster of %d nodes, %d replicas each: want 3 masters or more, each with a replica", v.Cluster.Nodes, v.Cluster.Replicas)
	}
	conf := map[string]string{}
	for _, l := range strings.Split(v.Redis.Configmap, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(l), " "); ok {
			conf[k] = val
		}
	}
	for k, want := range map[string]string{"maxmemory-policy": "allkeys-lfu", "cluster-require-full-coverage": "no"} {
		if conf[k] != want {
			t.Errorf("redis.configmap: %s %q, want %q", k, conf[k], want)
		}
	}
	if conf["maxmemory"] == "" {
		t.Error("redis.configmap sets no maxmemory")
	}
}

// TestK8sChecksCanFail breaks the manifests in ways that would break the
// fleet and shows checkK8s catches each.
func TestK8sChecksCanFail(t *testing.T) {
	files := k8sFiles(t)
	for _, tc := range []struct{ file, old, new, want string }{
		{"dnsd.yaml", `"-metrics", ":9153"`, `"-metrics", ":9153", "-no-such-flag"`, "unknown flag -no-such-flag"},
		{"resolverd.yaml", `- name: SHARDNS_WORKERS`, `- name: SHARDNS_WORKRES`, "reads no SHARDNS_WORKRES"},
		{"config.yaml", `SHARDNS_QUEUE: warm`, `SHARDNS_QEUE: warm`, "SHARDNS_QEUE is read by none"},
		{"dnsd.yaml", "      targetPort: 5353\n      protocol: UDP", "      targetPort: 5354\n      protocol: UDP", "targets 5354/UDP"},
		{"dnsd.yaml", `"127.0.0.1:5353"`, `"127.0.0.1:53"`, "probes port 53"},
		{"resolverd.yaml", "port: 50051\n              service:", "port: 50052\n              service:", "gRPC probe on port 50052"},
		{"cacheapi.yaml", `"-listen", ":8080"]`, `"-listen", ":8081"]`, "listens on port \"8081\""},
		{"dnsd.yaml", "    name: shardns-dnsd\n  minReplicas", "    name: shardns-dns\n  minReplicas", "scales Deployment/shardns-dns"},
		{"kustomization.yaml", "  - cacheapi.yaml\n", "", "does not list cacheapi.yaml"},
		{"dnsd.yaml", "kind: HorizontalPodAutoscaler", "kind: ''", "no apiVersion or kind"},
		{"dnsd.yaml", `args: ["-config", "/etc/shardns/shardns.yaml", `, `args: [`, "no config file"},
		{"resolverd.yaml", "            name: shardns-file\n", "            name: shardns-files\n", "no ConfigMap shardns-files"},
		{"cacheapi.yaml", "              mountPath: /etc/shardns\n", "              mountPath: /etc/shardns-conf\n", "mounts nothing at /etc/shardns"},
		{"config.yaml", "    dnsd:\n", "    listen: :53\n    dnsd:\n", "-listen means another thing in each daemon"},
	} {
		t.Run(tc.file+" "+tc.want, func(t *testing.T) {
			broken := map[string][]byte{}
			for k, v := range files {
				broken[k] = v
			}
			if !bytes.Contains(files[tc.file], []byte(tc.old)) {
				t.Fatalf("%s has no %q to break", tc.file, tc.old)
			}
			broken[tc.file] = bytes.Replace(files[tc.file], []byte(tc.old), []byte(tc.new), 1)
			docs, err := readK8s(broken)
			if err != nil {
				t.Fatal(err)
			}
			errs := checkK8s(docs)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no problem mentioning %q; got %v", tc.want, errs)
			}
		})
	}
}

// checkK8sConfigFile checks a daemon container is given the fleet's config
// file (-config, or SHARDNS_CONFIG) from a ConfigMap mounted read-only as a
// folder (so that the file follows the ConfigMap), and that the daemon
// loads it, with the container's arguments and variables, through the real
// parser.
func checkK8sConfigFile(daemon string, w k8sWorkload, c k8sContainer, args []string, env map[string]string, configMaps map[string]map[string]string) error {
	path := configPath(args, env)
	if path == "" {
		return fmt.Errorf("no config file: neither -config nor SHARDNS_CONFIG")
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	volume := ""
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			if !m.ReadOnly || m.SubPath != "" {
				return fmt.Errorf("%s is mounted writable or with subPath", dir)
			}
			volume = m.Name
		}
	}
	if volume == "" {
		return fmt.Errorf("-config %s, but the container mounts nothing at %s", path, dir)
	}
	cmName := ""
	for _, v := range w.Spec.Template.Spec.Volumes {
		if v.Name == volume && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	data, ok := configMaps[cmName][base]
	if !ok {
		return fmt.Errorf("%s comes from volume %s: no ConfigMap %s with %s here", path, volume, cmName, base)
	}
	tmp, err := os.CreateTemp("", "shardns-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if _, err := loadMounted(daemon, args, env, path, tmp.Name()); err != nil {
		return err
	}
	return nil
}
