{{- define "kar-injector.name" -}}
{{- printf "%s-kar-injector" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kar-injector.labels" -}}
app.kubernetes.io/name: kar-injector
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kar-injector.selector" -}}
app.kubernetes.io/name: kar-injector
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kar-injector.image" -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}

{{- define "kar-injector.tlsSecret" -}}
{{- printf "%s-tls" (include "kar-injector.name" .) -}}
{{- end -}}
