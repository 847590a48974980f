package config

import (
	"fmt"
	"reflect"
	"testing"
)

// Every pod serves its observability endpoint on the port the probes and the Prometheus
// annotations name, and Kubernetes probes /readyz for readiness and /healthz for liveness there.
func TestGenKubernetesProbesUseTheMetricsPort(t *testing.T) {
	k := Kubernetes{Replicas: 3, Name: "locks", Namespace: "infra", Base: func() *Config {
		c := GenBase()
		c.Observability = ObservabilityConfig{MetricsAddress: "127.0.0.1:1234", PProf: true}
		return c
	}()}
	files, err := k.Files()
	if err != nil {
		t.Fatalf("Files() error = %v, want nil", err)
	}
	objs := kubeObjects(t, files[0].Data)
	cm := objs["ConfigMap/locks-config"]
	for i := range k.Replicas {
		key := fmt.Sprintf("locks-%d.yaml", i)
		c, err := Parse([]byte(cm.Data[key]))
		if err != nil {
			t.Fatalf("config %s does not parse: %v", key, err)
		}
		want := ObservabilityConfig{MetricsAddress: "0.0.0.0:9405", PProf: true}
		if c.Observability != want {
			t.Errorf("%s observability = %+v, want %+v (the base's pprof kept, its address replaced)", key, c.Observability, want)
		}
	}
	type probe struct {
		HTTPGet struct {
			Path string
			Port string
		} `yaml:"httpGet"`
	}
	var spec struct {
		Template struct {
			Metadata struct{ Annotations map[string]string }
			Spec     struct {
				Containers []struct {
					Ports []struct {
						Name          string
						ContainerPort int `yaml:"containerPort"`
					}
					ReadinessProbe probe `yaml:"readinessProbe"`
					LivenessProbe  probe `yaml:"livenessProbe"`
				}
			}
		}
	}
	decodeSpec(t, objs, "StatefulSet/locks", &spec)
	ctr := spec.Template.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	got := []any{ports["metrics"], ctr.ReadinessProbe.HTTPGet.Path, ctr.ReadinessProbe.HTTPGet.Port,
		ctr.LivenessProbe.HTTPGet.Path, ctr.LivenessProbe.HTTPGet.Port, spec.Template.Metadata.Annotations["prometheus.io/port"]}
	want := []any{9405, "/readyz", "metrics", "/healthz", "metrics", "9405"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics port, readiness path and port, liveness path and port, scrape port = %v, want %v", got, want)
	}
}
