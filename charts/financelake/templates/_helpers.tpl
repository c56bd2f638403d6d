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

{{- define "financelake.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}

{{/* Environment every FinanceLake container gets: the ConfigMap, and the Secret if named. */}}
{{- define "financelake.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ .Release.Name }}-config
{{- if .Values.existingSecret }}
  - secretRef:
      name: {{ .Values.existingSecret }}
{{- end }}
{{- end -}}

{{/* The writable /tmp a read-only root filesystem needs (FINANCELAKE_HOME lives there). */}}
{{- define "financelake.tmpMount" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "financelake.podSecurity" -}}
serviceAccountName: {{ .Release.Name }}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.securityContext.runAsUser }}
  runAsGroup: {{ .Values.securityContext.runAsGroup }}
  fsGroup: {{ .Values.securityContext.runAsGroup }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}
