package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Manifests is the set of objects of the Kubernetes manifests, decoded.
type Manifests struct {
	ConfigMaps      []corev1.ConfigMap
	Secrets         []corev1.Secret
	Services        []corev1.Service
	StatefulSets    []appsv1.StatefulSet
	PDBs            []policyv1.PodDisruptionBudget
	ServiceMonitors []monitoringv1.ServiceMonitor
}

// kinds maps each apiVersion and kind the manifests may hold to a strict decoder into its Go
// API type.
func (m *Manifests) kinds() map[string]func([]byte) error {
	return map[string]func([]byte) error{
		"v1/ConfigMap":                            decodeInto(&m.ConfigMaps),
		"v1/Secret":                               decodeInto(&m.Secrets),
		"v1/Service":                              decodeInto(&m.Services),
		"apps/v1/StatefulSet":                     decodeInto(&m.StatefulSets),
		"policy/v1/PodDisruptionBudget":           decodeInto(&m.PDBs),
		"monitoring.coreos.com/v1/ServiceMonitor": decodeInto(&m.ServiceMonitors),
	}
}

func decodeInto[T any](list *[]T) func([]byte) error {
	return func(doc []byte) error {
		var obj T
		if err := yaml.UnmarshalStrict(doc, &obj); err != nil {
			return err
		}
		*list = append(*list, obj)
		return nil
	}
}

// AddFile strictly decodes every document of a manifest file into its Kubernetes API type:
// an unknown or misspelled field, a duplicated one or a value of the wrong type is an error,
// as with kubectl's --validate=strict, and so is a kind the manifests are not expected to hold.
func (m *Manifests) AddFile(name string, content []byte) error {
	kinds := m.kinds()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(content)))
	var problems []error
	for i := 1; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read document %d: %w", name, i, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			problems = append(problems, fmt.Errorf("%s: document %d: %w", name, i, err))
			continue
		}
		if meta.Kind == "" && len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		decode, ok := kinds[meta.APIVersion+"/"+meta.Kind]
		if !ok {
			problems = append(problems, fmt.Errorf("%s: document %d: unexpected apiVersion %q kind %q", name, i, meta.APIVersion, meta.Kind))
			continue
		}
		if err := decode(doc); err != nil {
			problems = append(problems, fmt.Errorf("%s: document %d (%s): %w", name, i, meta.Kind, err))
		}
	}
	return errors.Join(problems...)
}

// Check checks what the deployment promises across the objects: a StatefulSet whose pods are
// served by a headless Service, keep Raft state on a PersistentVolumeClaim, are probed on
// /readyz and /health, request resources, get longer than shutdown.timeout to stop, take
// their config from a ConfigMap and secrets from a Secret of the set; a PodDisruptionBudget
// and a ServiceMonitor that select them.
func (m *Manifests) Check() error {
	if len(m.StatefulSets) != 1 {
		return fmt.Errorf("%d StatefulSets, want 1", len(m.StatefulSets))
	}
	sts := m.StatefulSets[0]
	pod := sts.Spec.Template
	var problems []error
	fail := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if !slices.ContainsFunc(m.Services, func(s corev1.Service) bool {
		return s.Name == sts.Spec.ServiceName && s.Spec.ClusterIP == corev1.ClusterIPNone
	}) {
		fail("StatefulSet %s: serviceName %q is not a headless Service of the manifests", sts.Name, sts.Spec.ServiceName)
	}
	if sts.Spec.Selector == nil || !selects(sts.Spec.Selector, pod.Labels) {
		fail("StatefulSet %s: its selector does not select its pods", sts.Name)
	}
	shutdown, err := m.shutdownTimeout()
	if err != nil {
		fail("%v", err)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		fail("StatefulSet %s: terminationGracePeriodSeconds must be above shutdown.timeout (%s)", sts.Name, shutdown)
	}
	claims := map[string]bool{}
	for _, c := range sts.Spec.VolumeClaimTemplates {
		claims[c.Name] = true
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			fail("container %s: no cpu and memory requests", c.Name)
		}
		for _, mount := range c.VolumeMounts {
			if _, ok := volumes[mount.Name]; !ok && !claims[mount.Name] {
				fail("container %s: mounts %q, which is neither a volume nor a volume claim template", c.Name, mount.Name)
			}
		}
	}
	main := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == "mongorelay" })
	if main < 0 {
		fail("StatefulSet %s: no container named mongorelay", sts.Name)
		return errors.Join(problems...)
	}
	c := pod.Spec.Containers[main]
	if probePath(c.ReadinessProbe) != "/readyz" {
		fail("container mongorelay: the readiness probe must GET /readyz")
	}
	if probePath(c.LivenessProbe) != "/health" {
		fail("container mongorelay: the liveness probe must GET /health")
	}
	dataDir := ""
	for _, e := range c.Env {
		if e.Name == "MONGORELAY_DATA_DIR" {
			dataDir = e.Value
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !m.hasSecretKey(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key) {
			fail("container mongorelay: %s refers to Secret key %s/%s, not in the manifests", e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return claims[v.Name] && v.MountPath == dataDir }) {
		fail("container mongorelay: MONGORELAY_DATA_DIR %q is not on a volume claim template", dataDir)
	}
	for _, v := range pod.Spec.Volumes {
		if v.ConfigMap != nil && !slices.ContainsFunc(m.ConfigMaps, func(cm corev1.ConfigMap) bool { return cm.Name == v.ConfigMap.Name }) {
			fail("volume %s: ConfigMap %s is not in the manifests", v.Name, v.ConfigMap.Name)
		}
	}
	if !slices.ContainsFunc(m.PDBs, func(p policyv1.PodDisruptionBudget) bool { return selects(p.Spec.Selector, pod.Labels) }) {
		fail("no PodDisruptionBudget selects the StatefulSet's pods")
	}
	if !slices.ContainsFunc(m.ServiceMonitors, func(sm monitoringv1.ServiceMonitor) bool { return m.monitors(sm, pod.Labels) }) {
		fail("no ServiceMonitor scrapes /metrics of a Service of the StatefulSet's pods")
	}
	return errors.Join(problems...)
}

// shutdownTimeout is the shutdown.timeout the ConfigMaps' worker config files set, else its default.
func (m *Manifests) shutdownTimeout() (time.Duration, error) {
	timeout := shutdownTimeout
	for _, cm := range m.ConfigMaps {
		for key, file := range cm.Data {
			var settings map[string]any
			if err := yaml.Unmarshal([]byte(file), &settings); err != nil {
				return 0, fmt.Errorf("ConfigMap %s: %s: %w", cm.Name, key, err)
			}
			v, ok := settings["shutdown.timeout"]
			if !ok {
				continue
			}
			d, err := time.ParseDuration(fmt.Sprint(v))
			if err != nil {
				return 0, fmt.Errorf("ConfigMap %s: %s: shutdown.timeout: %w", cm.Name, key, err)
			}
			timeout = d
		}
	}
	return timeout, nil
}

// hasSecretKey says whether a Secret of the manifests holds key. mongorelay-tls is made by the
// user (cert-manager or kubectl) and is not among them.
func (m *Manifests) hasSecretKey(name, key string) bool {
	return slices.ContainsFunc(m.Secrets, func(s corev1.Secret) bool {
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		return s.Name == name && (inData || inString)
	})
}

// monitors says whether sm scrapes /metrics on a named port of a Service whose pods carry podLabels.
func (m *Manifests) monitors(sm monitoringv1.ServiceMonitor, podLabels map[string]string) bool {
	for _, svc := range m.Services {
		if !selects(&sm.Spec.Selector, svc.Labels) || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
			continue
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path == "/metrics" && slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				return true
			}
		}
	}
	return false
}

func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(set))
}

func probePath(p *corev1.Probe) string {
	if p == nil || p.HTTPGet == nil {
		return ""
	}
	return p.HTTPGet.Path
}
