{{/* Names and labels shared by the templates. */}}

{{- define "grafana-ha-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; the chart name is not repeated when the release has it. */}}
{{- define "grafana-ha-operator.fullname" -}}
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

{{- define "grafana-ha-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "grafana-ha-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* deploy/generate.sh drops the helm.sh/chart and managed-by lines from the plain manifests. */}}
{{- define "grafana-ha-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "grafana-ha-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: grafana-ha-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "grafana-ha-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "grafana-ha-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The leader Lease: named after the release so two releases never share one. */}}
{{- define "grafana-ha-operator.leaseName" -}}
{{- include "grafana-ha-operator.fullname" . }}
{{- end }}

{{- define "grafana-ha-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Cleaned watch list: entries trimmed, empty ones dropped. */}}
{{- define "grafana-ha-operator.watchNamespaces" -}}
{{- $out := list }}
{{- range .Values.watchNamespaces }}
{{- $ns := trim (toString .) }}
{{- if $ns }}
{{- $out = append $out $ns }}
{{- end }}
{{- end }}
{{- join "," (uniq $out) }}
{{- end }}

{{/*
Namespaced permissions of the controller, exactly the calls it makes (src/reconcile/,
src/observe.rs): read access to what it watches, and per kind only the writes it does.
A server-side apply that creates an object is a PATCH that RBAC also checks as `create`,
so every kind the operator applies has both. `get` is kept next to list/watch: it
reveals nothing a list does not.
*/}}
{{- define "grafana-ha-operator.namespacedRules" -}}
# The GrafanaClusters it reconciles, and their status (server-side apply of status).
- apiGroups: ["grafana-ha.io"]
  resources: ["grafanaclusters"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["grafana-ha.io"]
  resources: ["grafanaclusters/status"]
  verbs: ["patch"]
{{- if .Values.rbac.ownerReferencesPermissionEnforcement }}
# Children carry blockOwnerDeletion: the OwnerReferencesPermissionEnforcement admission
# plugin demands update on the owner's finalizers for that.
- apiGroups: ["grafana-ha.io"]
  resources: ["grafanaclusters/finalizers"]
  verbs: ["update"]
{{- end }}
# Generated Secrets (admin password, signing key: created once), copies of RDS-managed
# credentials and the cache connection (applied; deleted when no longer referenced), and
# user Secrets the pods read (data read on demand, metadata watched).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# ConfigMaps: the data source provisioning file the operator writes (spec.dataSources,
# deleted when no longer needed), and the user's ConfigMaps the pods read (spec.envFrom, the
# database CA bundle: data read on demand, metadata watched, never written).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Grafana Service(s) and the plugins claim; superseded ones are deleted.
- apiGroups: [""]
  resources: ["services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Grafana pods' ServiceAccount (spec.serviceAccount; deleted when the user switches to
# their own) and the Ingress (spec.ingress; deleted when removed from the spec).
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Grafana Deployment (never deleted by the operator: owner references do that).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Plugin installer Jobs (one per plugin set; older ones are deleted).
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The Grafana PodDisruptionBudget; deleted when the spec turns it off.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# HorizontalPodAutoscalers that target a GrafanaCluster: their maxReplicas bounds the
# database connection budget (read only).
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch"]
# NetworkPolicies around the Grafana pods and the plugin installer (spec.networkPolicy).
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The optional children: an HTTPRoute (spec.httpRoute) and a ServiceMonitor
# (spec.monitoring.serviceMonitor), written only when their CRDs are installed. Whether
# they are is asked through API discovery, open to every authenticated user
# (system:discovery): no rule needed for it.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "list", "create", "patch", "delete"]
# Events on GrafanaClusters (events.k8s.io/v1; a repeated Event is patched).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
