package deploy

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

type k8sNetPol struct {
	Spec struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				PodSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				NamespaceSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"namespaceSelector"`
			} `yaml:"from"`
			Ports []struct {
				Port     int    `yaml:"port"`
				Protocol string `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

// cachePods are the labels of the Redis Cluster chart's pods (release
// shardns-cache), which the manifests do not define themselves.
var cachePods = map[string]string{"app.kubernetes.io/name": "redis-cluster", "app.kubernetes.io/instance": "shardns-cache"}

// reachers returns who the NetworkPolicies let reach a pod with labels on
// port/proto: the names of the workloads (or "cache") whose pods a rule
// admits, "anyone" for a rule without from, and "namespaces" for a
// namespaceSelector. A pod no policy selects is reachable by anyone.
func reachers(pols []k8sNetPol, pods map[string]map[string]string, labels map[string]string, port int, proto string) []string {
	set := map[string]bool{}
	selected := false
	for _, p := range pols {
		if !mapContains(labels, p.Spec.PodSelector.MatchLabels) || !slices.Contains(p.Spec.PolicyTypes, "Ingress") {
			continue
		}
		selected = true
		for _, rule := range p.Spec.Ingress {
			if len(rule.Ports) > 0 && !slices.ContainsFunc(rule.Ports, func(rp struct {
				Port     int    `yaml:"port"`
				Protocol string `yaml:"protocol"`
			}) bool {
				return rp.Port == port && rp.Protocol == proto
			}) {
				continue
			}
			if len(rule.From) == 0 {
				set["anyone"] = true
			}
			for _, f := range rule.From {
				switch {
				case f.NamespaceSelector != nil:
					set["namespaces"] = true
				case f.PodSelector != nil:
					for name, l := range pods {
						if mapContains(l, f.PodSelector.MatchLabels) {
							set[name] = true
						}
					}
				}
			}
		}
	}
	if !selected {
		return []string{"anyone"}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkNetPols returns where the policies let the wrong pods reach the
// back end: only the frontends reach resolverd, only the frontends and
// resolverd reach the cache and the queue, clients reach dnsd and
// cacheapi.
func checkNetPols(docs []k8sDoc) []error {
	var pols []k8sNetPol
	pods := map[string]map[string]string{"cache": cachePods}
	var errs []error
	for _, d := range docs {
		switch d.Kind {
		case "NetworkPolicy":
			var p k8sNetPol
			if err := d.node.Decode(&p); err != nil {
				errs = append(errs, fmt.Errorf("%v: %w", d, err))
			}
			pols = append(pols, p)
		case "Deployment", "StatefulSet":
			var w k8sWorkload
			if err := d.node.Decode(&w); err == nil {
				pods[strings.TrimPrefix(d.Metadata.Name, "shardns-")] = w.Spec.Template.Metadata.Labels
			}
		}
	}
	for _, want := range []struct {
		target string
		port   int
		proto  string
		from   []string
	}{
		{"resolverd", 50051, "TCP", []string{"cacheapi", "dnsd"}},
		{"queue", 6379, "TCP", []string{"cacheapi", "dnsd", "resolverd"}},
		{"cache", 6379, "TCP", []string{"cache", "cacheapi", "dnsd", "resolverd"}},
		{"cache", 16379, "TCP", []string{"cache"}},
		{"dnsd", 5353, "UDP", []string{"anyone"}},
		{"dnsd", 5353, "TCP", []string{"anyone"}},
		{"cacheapi", 8080, "TCP", []string{"anyone"}},
		{"queue", 9153, "TCP", []string{}},
	} {
		labels, ok := pods[want.target]
		if !ok {
			errs = append(errs, fmt.Errorf("no workload %s", want.target))
			continue
		}
		if got := reachers(pols, pods, labels, want.port, want.proto); !slices.Equal(got, want.from) {
			errs = append(errs, fmt.Errorf("%s %d/%s reachable from %v, want %v", want.target, want.port, want.proto, got, want.from))
		}
	}
	return errs
}

// TestK8sNetworkPolicies checks the manifests keep the back end private,
// and that the check catches a policy that would open it.
func TestK8sNetworkPolicies(t *testing.T) {
	files := k8sFiles(t)
	docs, err := readK8s(files)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkNetPols(docs) {
		t.Error(err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"              app.kubernetes.io/name: shardns-cacheapi\n      ports:\n        - port: 50051",
			"              app.kubernetes.io/name: shardns-queue\n      ports:\n        - port: 50051", "resolverd 50051/TCP reachable from [dnsd queue]"},
		{"  podSelector: {}\n  policyTypes: [Ingress]\n---", "  podSelector:\n    matchLabels: {x: y}\n  policyTypes: [Ingress]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: open\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n    - {}\n---", "resolverd 50051/TCP reachable from [anyone cacheapi dnsd]"},
		{"        - port: 6379\n          protocol: TCP\n---\n# The cache", "        - port: 6380\n          protocol: TCP\n---\n# The cache", "queue 6379/TCP reachable from []"},
	} {
		broken := map[string][]byte{}
		for k, v := range files {
			broken[k] = v
		}
		if !bytes.Contains(files["networkpolicy.yaml"], []byte(tc.old)) {
			t.Fatalf("networkpolicy.yaml has no %q to break", tc.old)
		}
		broken["networkpolicy.yaml"] = bytes.Replace(files["networkpolicy.yaml"], []byte(tc.old), []byte(tc.new), 1)
		bdocs, err := readK8s(broken)
		if err != nil {
			t.Fatal(err)
		}
		if errs := checkNetPols(bdocs); !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
			t.Errorf("breaking %q: no problem mentioning %q; got %v", tc.old, tc.want, errs)
		}
	}
}

// TestK8sRedisPassword checks every pod that talks to Redis (the three
// daemons and the queue's Redis itself) reads the password from Secret
// shardns-redis, mounted where config.yaml says, readable by the pod's
// group.
func TestK8sRedisPassword(t *testing.T) {
	docs, err := readK8s(k8sFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	var file string
	for _, d := range docs {
		if d.Kind == "ConfigMap" && d.Metadata.Name == "shardns-config" {
			var cm k8sConfigMap
			d.node.Decode(&cm)
			file = cm.Data["SHARDNS_REDIS_PASSWORD_FILE"]
		}
	}
	dir, name, ok := strings.Cut(file, "/redis-password")
	if !ok || name != "" {
		t.Fatalf("SHARDNS_REDIS_PASSWORD_FILE %q, want .../redis-password", file)
	}
	var pod struct {
		Spec struct {
			Template struct {
				Spec struct {
					SecurityContext struct {
						FSGroup int `yaml:"fsGroup"`
					} `yaml:"securityContext"`
					Containers []struct {
						Name         string `yaml:"name"`
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []struct {
						Name   string `yaml:"name"`
						Secret *struct {
							SecretName string `yaml:"secretName"`
							Items      []struct {
								Key  string `yaml:"key"`
								Path string `yaml:"path"`
							} `yaml:"items"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	seen := 0
	for _, d := range docs {
		if d.Kind != "Deployment" && d.Kind != "StatefulSet" {
			continue
		}
		seen++
		if err := d.node.Decode(&pod); err != nil {
			t.Fatal(err)
		}
		spec := pod.Spec.Template.Spec
		vol := ""
		for _, v := range spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "shardns-redis" && len(v.Secret.Items) == 1 &&
				v.Secret.Items[0].Key == "password" && v.Secret.Items[0].Path == "redis-password" {
				vol = v.Name
			}
		}
		if vol == "" {
			t.Errorf("%v: no volume of Secret shardns-redis with password as redis-password", d)
			continue
		}
		if spec.SecurityContext.FSGroup == 0 {
			t.Errorf("%v: no fsGroup: the container's user cannot read the Secret", d)
		}
		for _, c := range spec.Containers {
			if !slices.ContainsFunc(c.VolumeMounts, func(m struct {
				Name      string `yaml:"name"`
				MountPath string `yaml:"mountPath"`
			}) bool {
				return m.Name == vol && m.MountPath == dir
			}) {
				t.Errorf("%v: container %s does not mount %s at %s", d, c.Name, vol, dir)
			}
		}
	}
	if seen != 4 {
		t.Errorf("%d workloads, want dnsd, resolverd, cacheapi and the queue", seen)
	}
}
