{{- /* The pod annotations; called with (dict "root" $ "sidecarContainer" bool). */ -}}
{{- define "kar-greeter.annotations" -}}
{{- with .root -}}
kar.ibm.com/app: {{ .Values.app | quote }}
kar.ibm.com/appPort: {{ .Values.appPort | quote }}
kar.ibm.com/runtimePort: {{ .Values.runtimePort | quote }}
kar.ibm.com/sidecarContainer: {{ $.sidecarContainer | quote }}
{{- if .Values.verbose }}
kar.ibm.com/verbose: {{ .Values.verbose | quote }}
{{- end }}
{{- if .Values.extraArgs }}
kar.ibm.com/extraArgs: {{ .Values.extraArgs | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "kar-greeter.labels" -}}
app.kubernetes.io/part-of: {{ .Values.app }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
