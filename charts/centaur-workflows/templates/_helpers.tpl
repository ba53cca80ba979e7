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

{{/* An image reference from {repository, tag, digest}. */}}
{{- define "centaur.image" -}}
{{- .repository }}{{ if .digest }}@{{ .digest }}{{ else }}:{{ .tag }}{{ end -}}
{{- end -}}

{{/*
WORKFLOW_DIRS, later directories overriding earlier ones: the image's, the overlay image's (or
overlayInit's copy), the ConfigMap's, then git-sync's checkout through its link.
*/}}
{{- define "centaur.workflowDirs" -}}
{{- $dirs := list "/app/workflows" "/app/overlay/org/workflows" "/app/overlay/configmap/workflows" -}}
{{- with .Values.gitSync }}{{ if .enabled }}
{{- $dirs = append $dirs (trimSuffix "/" (printf "%s/%s/%s" (trimSuffix "/" .root) .link (.subPath | default ""))) -}}
{{- end }}{{ end -}}
{{- join ":" $dirs -}}
{{- end -}}

{{/* A container's securityContext: non-root as the given user, read-only root file system. */}}
{{- define "centaur.containerSecurity" -}}
runAsNonRoot: true
runAsUser: {{ int64 . }}
runAsGroup: {{ int64 . }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
  - ALL
{{- end -}}

{{/*
A git-sync v4 container: (dict "name" ... "oneTime" bool "gitSync" .Values.gitSync). It clones
gitSync.repo at gitSync.ref into gitSync.root and points gitSync.link at the checkout; with
oneTime it exits after the first clone (the init container), else it polls every period.
*/}}
{{- define "centaur.gitSyncContainer" -}}
{{- $g := .gitSync -}}
- name: {{ .name }}
  image: {{ include "centaur.image" $g.image }}
  {{- with $g.image.pullPolicy }}
  imagePullPolicy: {{ . }}
  {{- end }}
  args:
  - --repo={{ $g.repo }}
  - --ref={{ $g.ref }}
  - --root={{ $g.root }}
  - --link={{ $g.link }}
  - --depth={{ int64 $g.depth }}
  {{- if .oneTime }}
  - --one-time
  {{- else }}
  - --period={{ $g.period }}
  {{- end }}
  {{- range $g.extraArgs }}
  - {{ . | quote }}
  {{- end }}
  env:
  # git writes its configuration under HOME: an emptyDir, as the root file system is read-only.
  - name: HOME
    value: /tmp
  {{- with $g.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  volumeMounts:
  - name: git-sync
    mountPath: {{ $g.root }}
  - name: git-sync-home
    mountPath: /tmp
  {{- with $g.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  securityContext:
    {{- include "centaur.containerSecurity" $g.runAsUser | nindent 4 }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
{{- end -}}
