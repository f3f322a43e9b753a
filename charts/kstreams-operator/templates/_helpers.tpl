{{/* Chart name, overridable. */}}
{{- define "kstreams-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's namespaced objects. */}}
{{- define "kstreams-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of cluster-scoped objects: includes the namespace so releases never collide. */}}
{{- define "kstreams-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "kstreams-operator.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "kstreams-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kstreams-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kstreams-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kstreams-operator.labels" -}}
helm.sh/chart: {{ include "kstreams-operator.chart" . }}
{{ include "kstreams-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kstreams-operator
{{- end }}

{{- define "kstreams-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kstreams-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kstreams-operator.leaseName" -}}
{{- default (include "kstreams-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "kstreams-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
What the operator does to StreamApps and their children, in the namespaces it watches. Exactly
the calls the operator makes; see docs/operations.md.
*/}}
{{- define "kstreams-operator.appRules" -}}
- apiGroups: [kstreams.dev]
  resources: [streamapps]
  verbs: [get, list, watch]
- apiGroups: [kstreams.dev]
  resources: [streamapps/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [statefulsets]
  # delete: only with propagationPolicy=Orphan, to change volumeClaimTemplates when the
  # state volumes grow (the pods and volumes stay).
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  # patch: volume growth. delete only with reset.allowStateWipe: a reset with
  # localState: Wipe deletes the app's own state claims; otherwise the StatefulSet controller
  # deletes claims under a Delete retention policy, never the operator.
  {{- if .Values.reset.allowStateWipe }}
  verbs: [get, list, patch, delete]
  {{- else }}
  verbs: [get, list, patch]
  {{- end }}
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{- define "kstreams-operator.storageClassRules" -}}
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get]
{{- end }}

{{/*
Lost pods (rbac.readNodes): the nodes that pods showing a node's loss are bound to (get), the
node a local volume is pinned to (list, by its kubernetes.io/hostname label), and the
PersistentVolumes of those pods' claims (get). Only for pods that show a symptom; without it
the operator reports what the pods alone show.
*/}}
{{- define "kstreams-operator.nodeRules" -}}
{{- if .Values.rbac.readNodes }}
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get]
{{- end }}
{{- end }}
