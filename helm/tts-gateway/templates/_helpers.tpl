{{/*
Names
*/}}
{{- define "tts-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tts-gateway.fullname" -}}
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

{{- define "tts-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tts-gateway.controlPlane.fullname" -}}
{{- printf "%s-control-plane" (include "tts-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tts-gateway.triton.fullname" -}}
{{- printf "%s-triton" (include "tts-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/)
*/}}
{{- define "tts-gateway.labels" -}}
helm.sh/chart: {{ include "tts-gateway.chart" . }}
app.kubernetes.io/name: {{ include "tts-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tts-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "tts-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tts-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tts-gateway.controlPlane.labels" -}}
{{ include "tts-gateway.labels" . }}
app.kubernetes.io/component: control-plane
{{- end }}

{{- define "tts-gateway.controlPlane.selectorLabels" -}}
{{ include "tts-gateway.selectorLabels" . }}
app.kubernetes.io/component: control-plane
{{- end }}

{{- define "tts-gateway.triton.labels" -}}
{{ include "tts-gateway.labels" . }}
app.kubernetes.io/component: triton
{{- end }}

{{- define "tts-gateway.triton.selectorLabels" -}}
{{ include "tts-gateway.selectorLabels" . }}
app.kubernetes.io/component: triton
{{- end }}

{{/*
Images
*/}}
{{- define "tts-gateway.controlPlane.image" -}}
{{- $img := .Values.controlPlane.image -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}

{{- define "tts-gateway.triton.image" -}}
{{- $img := .Values.triton.image -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}

{{- define "tts-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tts-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Secret holding DATABASE_URL, REDIS_URL, TTS_ADMIN_TOKEN, VOICE_ENCRYPTION_KEY and API_KEY_PEPPER:
either the user's existingSecret or the one this chart renders.
*/}}
{{- define "tts-gateway.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "tts-gateway.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Environment taken from the secret. Keys not present in an existing secret are optional, except
DATABASE_URL and VOICE_ENCRYPTION_KEY which an existing secret must provide.
*/}}
{{- define "tts-gateway.secretEnv" -}}
{{- $name := include "tts-gateway.secretName" . -}}
{{- $keys := .Values.secrets.keys -}}
{{- $existing := ne .Values.secrets.existingSecret "" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.databaseUrl }}
      optional: {{ not $existing }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.redisUrl }}
      optional: true
- name: TTS_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.adminToken }}
      optional: true
- name: VOICE_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.voiceEncryptionKey }}
      optional: {{ not $existing }}
- name: API_KEY_PEPPER
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $keys.apiKeyPepper }}
      optional: true
{{- end }}

{{/*
Where the control plane reaches Triton.
*/}}
{{/*
The control plane balances streams across Triton pods itself: by default it resolves the headless
Service (one record per ready pod) every controlPlane.triton.dnsRefreshSeconds and reaches each pod on
the ports below. The ClusterIP Service would pin each control-plane replica to one pod (one long-lived
gRPC connection).
*/}}
{{- define "tts-gateway.triton.grpcUrl" -}}
{{- default (printf "dns:///%s-headless.%s.svc:%d" (include "tts-gateway.triton.fullname" .) .Release.Namespace (int .Values.triton.service.grpcPort)) .Values.controlPlane.triton.grpcUrl }}
{{- end }}
{{- define "tts-gateway.triton.httpUrl" -}}
{{- default (printf "http://%s:%d" (include "tts-gateway.triton.fullname" .) (int .Values.triton.service.httpPort)) .Values.controlPlane.triton.httpUrl }}
{{- end }}
{{- define "tts-gateway.triton.metricsUrl" -}}
{{- default (printf "http://%s-metrics:%d/metrics" (include "tts-gateway.triton.fullname" .) (int .Values.triton.service.metricsPort)) .Values.controlPlane.triton.metricsUrl }}
{{- end }}

{{/*
Model store claim name ("" = no PVC, an emptyDir filled by the export init container).
*/}}
{{- define "tts-gateway.triton.modelClaim" -}}
{{- $p := .Values.triton.modelStore.persistence -}}
{{- if $p.existingClaim }}
{{- $p.existingClaim }}
{{- else if $p.enabled }}
{{- printf "%s-models" (include "tts-gateway.triton.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Whether monitoring.coreos.com CRDs may be rendered.
*/}}
{{- define "tts-gateway.monitoringApi" -}}
{{- if or .Values.metrics.assumeMonitoringCRDs (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{/*
prometheus-adapter rules (custom and external metrics APIs) for the two HPAs. Rendered into the ConfigMap and
printed by NOTES.txt; the metric names are the ones the HPAs consume.
*/}}
{{- define "tts-gateway.prometheusAdapterRules" -}}
{{- $pa := .Values.prometheusAdapter -}}
rules:
  # Triton: average queue time per request (microseconds) of each pod, over all models.
  - seriesQuery: 'nv_inference_queue_duration_us{namespace!="",pod!=""}'
    resources:
      overrides:
        namespace: {resource: "namespace"}
        pod: {resource: "pod"}
    name:
      matches: "^nv_inference_queue_duration_us$"
      as: {{ $pa.tritonQueueTimeMetric | quote }}
    metricsQuery: 'sum by (<<.GroupBy>>) (rate(nv_inference_queue_duration_us{<<.LabelMatchers>>}[{{ $pa.rateWindow }}])) / clamp_min(sum by (<<.GroupBy>>) (rate(nv_inference_request_success{<<.LabelMatchers>>}[{{ $pa.rateWindow }}])), 1e-9)'
  # Control plane: HTTP requests per second of each pod.
  - seriesQuery: '{{ $pa.controlPlaneRequestsSeries }}{namespace!="",pod!=""}'
    resources:
      overrides:
        namespace: {resource: "namespace"}
        pod: {resource: "pod"}
    name:
      matches: "^{{ $pa.controlPlaneRequestsSeries }}$"
      as: {{ $pa.controlPlaneRequestsMetric | quote }}
    metricsQuery: 'sum by (<<.GroupBy>>) (rate({{ $pa.controlPlaneRequestsSeries }}{<<.LabelMatchers>>}[{{ $pa.rateWindow }}]))'
externalRules:
  # Control plane's admission signal (external.metrics.k8s.io): seconds a new request would wait for
  # its engine (backlog / measured service rate), averaged over control-plane pods, worst engine.
  - seriesQuery: '{{ $pa.admissionWaitSeries }}{namespace!=""}'
    resources:
      overrides:
        namespace: {resource: "namespace"}
    name:
      matches: "^{{ $pa.admissionWaitSeries }}$"
      as: {{ $pa.admissionWaitMetric | quote }}
    metricsQuery: 'max(avg by (engine) ({{ $pa.admissionWaitSeries }}{<<.LabelMatchers>>}))'
{{- end }}
