{{/* Labels shared by every object of the release. */}}
{{- define "financelake.labels" -}}
app.kubernetes.io/name: financelake
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The selector of one component. */}}
{{- define "financelake.selector" -}}
app.kubernetes.io/name: financelake
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The metadata every object starts with. Context: the root, or a dict with "root" and
optionally "component"; a workload's dict also says which images it runs ("ownImage" true,
"thirdPartyImage" the image) for the checkov findings accepted about them. */}}
{{- define "financelake.meta" -}}
{{- $root := .root | default . -}}
namespace: {{ $root.Release.Namespace }}
labels:
  {{- include "financelake.labels" $root | nindent 2 }}
  {{- with .component }}
  app.kubernetes.io/component: {{ . }}
  {{- end }}
{{- if or .ownImage .thirdPartyImage }}
{{- with include "financelake.checkovSkips" . }}
annotations:
  {{- . | trim | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* FinanceLake's image, by digest when one is given (tags in the ECR repository are
immutable too, see terraform/modules/ecr). */}}
{{- define "financelake.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount of a component: AWS rights only where the component needs them
(IRSA roles from terraform/modules/iam-irsa). Context: dict "root" and "component". */}}
{{- define "financelake.serviceAccountName" -}}
{{- include "financelake.accountOfRole" (get .root.Values.serviceAccounts.components .component | default "none") -}}
{{- end -}}

{{/* The ServiceAccount of a set of rights (none, lakeReader, lakeWriter, trainer), the name
its IRSA role trusts. */}}
{{- define "financelake.accountOfRole" -}}
{{- if eq . "none" -}}financelake{{- else -}}financelake-{{ kebabcase . }}{{- end -}}
{{- end -}}

{{/* checkov findings accepted for a workload, each with its reason, as checkov reads them
(annotations checkov.io/skipN: CHECK=reason). Only the ones that apply are written. */}}
{{- define "financelake.checkovSkips" -}}
{{- $root := .root -}}
{{- $skips := list -}}
{{- $tags := list -}}
{{- if and .ownImage (not $root.Values.image.digest) -}}
{{- $tags = append $tags "FinanceLake's tag names one image, the ECR repository's tags being immutable (terraform/modules/ecr); set image.digest to pin by digest" -}}
{{- end -}}
{{- if and .thirdPartyImage (not (contains "@sha256:" .thirdPartyImage)) -}}
{{- $tags = append $tags (printf "%s is an upstream release tag; give it as name@sha256:digest (or mirror it into ECR) to pin it" .thirdPartyImage) -}}
{{- end -}}
{{- with $tags -}}
{{- $skips = append $skips (printf "CKV_K8S_43=%s" (join "; " .)) -}}
{{- end -}}
{{- if ne $root.Values.image.pullPolicy "Always" -}}
{{- $skips = append $skips "CKV_K8S_15=Images loaded straight into the nodes (kind, minikube) are in no registry; values-eks.yaml pulls Always" -}}
{{- end -}}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end -}}

{{/* The settings every FinanceLake container gets: the ConfigMap's variables. */}}
{{- define "financelake.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ .Release.Name }}-config
{{- end -}}

{{/* Where the existing Secret is mounted: files, not variables, so no secret sits in the
environment (FINANCELAKE_SECRETS_DIR, set in the ConfigMap, points the settings there). */}}
{{- define "financelake.secretsDir" -}}/var/run/secrets/financelake{{- end -}}

{{/* The mounts of a FinanceLake container (items of volumeMounts): the writable /tmp a
read-only root filesystem needs (FINANCELAKE_HOME lives there), and the Secret if named. */}}
{{- define "financelake.mounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.existingSecret }}
- name: secrets
  mountPath: {{ include "financelake.secretsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The volumes behind financelake.mounts (items of volumes). */}}
{{- define "financelake.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.existingSecret }}
- name: secrets
  secret:
    secretName: {{ .Values.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* Pod-level security. Context: dict "root" and "component". */}}
{{- define "financelake.podSecurity" -}}
{{- $root := .root -}}
serviceAccountName: {{ include "financelake.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ $root.Values.securityContext.runAsUser }}
  runAsGroup: {{ $root.Values.securityContext.runAsGroup }}
  fsGroup: {{ $root.Values.securityContext.runAsGroup }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Pod annotations: the mesh's sidecar when mTLS is on (Linkerd: mutual TLS between every
meshed pod, identities from the ServiceAccounts; as a native sidecar, so the training Job's
pod can finish), and any "extra". Context: the root, or a
dict with "root" and "extra". */}}
{{- define "financelake.podAnnotations" -}}
{{- $root := .root | default . -}}
{{- $annotations := .extra | default dict -}}
{{- if $root.Values.mtls.linkerd -}}
{{- $annotations = merge (dict "linkerd.io/inject" "enabled" "config.alpha.linkerd.io/proxy-enable-native-sidecar" "true") $annotations -}}
{{- end -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An init container creating the missing Kafka topics (`financelake topics create`; MSK
does not auto-create them) before a producer or the worker starts. Idempotent, and safe to
race. Context: the root. */}}
{{- define "financelake.topicsInit" -}}
- name: topics
  image: {{ include "financelake.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["topics", "create"]
  {{- include "financelake.envFrom" . | nindent 2 }}
  resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: 500m, memory: 512Mi}}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "financelake.mounts" . | nindent 4 }}
{{- end -}}
