{{- define "ce.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ce.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "ce.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ce.serviceAccount" -}}
{{- default (include "ce.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "ce.tlsSecret" -}}
{{- default (printf "%s-tls" (include "ce.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{- define "ce.tokenSecret" -}}
{{- default (printf "%s-token" (include "ce.fullname" .)) .Values.apiToken.existingSecret -}}
{{- end -}}

{{/* The identities the guard exempts by name: ArgoCD's (always), configured GitOps identities,
exempt users, and the controller manager. The webhook's matchConditions and the engine's
configuration are rendered from the same lists. */}}
{{- define "ce.exemptUsers" -}}
{{- $users := list "system:serviceaccount:argocd:argocd-application-controller" "system:serviceaccount:argocd:argocd-server" "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-application-controller" "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-server" "system:kube-controller-manager" -}}
{{- $users = concat $users .Values.guard.gitopsIdentities .Values.guard.exemptUsers | uniq -}}
{{- range $i, $u := $users }}{{ if $i }}, {{ end }}'{{ $u }}'{{ end -}}
{{- end -}}

{{/* "true" when the store is PostgreSQL (database.url or database.existingSecret), else empty:
SQLite, one replica. */}}
{{- define "ce.postgres" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end -}}
{{- end -}}
