{{/* The prefix of every name: fullnameOverride, or the release name. */}}
{{- define "centaur.prefix" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 30 | trimSuffix "-" -}}
{{- end -}}

{{/* The manager's ServiceAccount (and Deployment) name. */}}
{{- define "centaur.manager" -}}
{{- include "centaur.prefix" . }}-controller-manager
{{- end -}}

{{/* Labels of every object. */}}
{{- define "centaur.labels" -}}
app.kubernetes.io/name: workflow-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The labels that select the manager's pods. */}}
{{- define "centaur.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: workflow-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The manager's ServiceAccount as a RoleBinding subject. */}}
{{- define "centaur.subject" -}}
- kind: ServiceAccount
  name: {{ include "centaur.manager" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}

{{/* namespace/name of the agents' ConfigMap. */}}
{{- define "centaur.agentsConfig" -}}
{{- .Values.agents.configMap | default (printf "%s/%s-agents" .Release.Namespace (include "centaur.prefix" .)) -}}
{{- end -}}

{{/*
The namespaces whose Secrets the manager reads, other than its own, as a list: those of
secretNamespaces and the agents' ConfigMap's.
*/}}
{{- define "centaur.readerNamespaces" -}}
{{- $own := .Release.Namespace -}}
{{- $out := list -}}
{{- range .Values.secretNamespaces }}{{ if ne . $own }}{{ $out = append $out . }}{{ end }}{{ end -}}
{{- $agents := splitList "/" (include "centaur.agentsConfig" .) | first -}}
{{- if ne $agents $own }}{{ $out = append $out $agents }}{{ end -}}
{{- toJson (uniq $out) -}}
{{- end -}}
