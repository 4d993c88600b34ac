{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release name, plus the chart name unless the release already contains it. */}}
{{- define "gatehouse.fullname" -}}
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

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels (app.kubernetes.io/*) on every object. */}}
{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- end }}

{{/* Labels that select the pods: must never change between upgrades. */}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Does the chart render its own Secret? */}}
{{- define "gatehouse.createSecret" -}}
{{- if and (not .Values.secret.existingSecret) (or .Values.secret.create (and .Values.config.inSecret (not .Values.config.existingSecret))) -}}
true
{{- end -}}
{{- end }}

{{/* Name of the Secret with the pod's credentials ("" when there is none). */}}
{{- define "gatehouse.secretName" -}}
{{- if .Values.secret.existingSecret -}}
{{- .Values.secret.existingSecret -}}
{{- else if include "gatehouse.createSecret" . -}}
{{- include "gatehouse.fullname" . -}}
{{- end -}}
{{- end }}

{{/* gatehouse.yaml as rendered from values. */}}
{{- define "gatehouse.configFile" -}}
{{- $file := deepCopy (default dict .Values.config.file) -}}
{{- $_ := set $file "shutdown_timeout" (printf "%ds" (int .Values.shutdownTimeoutSeconds)) -}}
{{- if .Values.tls.enabled -}}
{{- $tls := deepCopy (default dict (get $file "tls")) -}}
{{- $_ := set $tls "cert_file" "/etc/gatehouse/tls/tls.crt" -}}
{{- $_ := set $tls "key_file" "/etc/gatehouse/tls/tls.key" -}}
{{- $_ := set $tls "min_version" (toString .Values.tls.minVersion) -}}
{{- $_ := set $file "tls" $tls -}}
{{- end -}}
# Rendered by the gatehouse Helm chart from values `config.file`.
# listen, admin_listen and data_dir are set through GATEHOUSE_LISTEN,
# GATEHOUSE_ADMIN_LISTEN and GATEHOUSE_DATA_DIR in the Deployment.
{{ toYaml $file }}
{{- end }}

{{/* Path of the config file inside the container. */}}
{{- define "gatehouse.configPath" -}}
{{- if and .Values.vault.enabled .Values.vault.renderConfig -}}
/vault/secrets/gatehouse.yaml
{{- else -}}
/etc/gatehouse/gatehouse.yaml
{{- end -}}
{{- end }}

{{/* Audit backend as Gatehouse will resolve it from config.file: "postgres",
"file", or "" when the chart cannot know (the config comes from an
existing Secret or the Vault Agent). */}}
{{- define "gatehouse.auditBackend" -}}
{{- if not (or .Values.config.existingSecret (and .Values.vault.enabled .Values.vault.renderConfig)) -}}
{{- $f := default dict .Values.config.file -}}
{{- $backend := toString (dig "audit" "backend" "" $f) -}}
{{- if not $backend -}}
{{- $backend = ternary "postgres" "file" (eq (toString (dig "store" "driver" "sqlite" $f)) "postgres") -}}
{{- end -}}
{{- $backend -}}
{{- end -}}
{{- end }}

{{/* Checkpoint origin Gatehouse will use with audit backend postgres:
audit.origin, else gatehouse/<database> from a postgres:// DSN; "" when the
chart cannot tell. The audit signing key's name must equal it. */}}
{{- define "gatehouse.auditOrigin" -}}
{{- $f := default dict .Values.config.file -}}
{{- $origin := toString (dig "audit" "origin" "" $f) -}}
{{- if $origin -}}
{{- $origin -}}
{{- else -}}
{{- $dsn := toString (dig "store" "dsn" "" $f) -}}
{{- if regexMatch "^postgres(ql)?://" $dsn -}}
{{- $db := trimPrefix "/" (get (urlParse $dsn) "path") -}}
{{- if $db }}gatehouse/{{ $db }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* Checks on values that would otherwise fail only at run time. */}}
{{- define "gatehouse.validate" -}}
{{- $drain := add (int .Values.preStopSleepSeconds) (int .Values.shutdownTimeoutSeconds) -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $drain) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + shutdownTimeoutSeconds (%d), or Kubernetes kills requests that are still draining" (int .Values.terminationGracePeriodSeconds) (int $drain)) -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.secretName) -}}
{{- fail "tls.enabled needs tls.secretName (a kubernetes.io/tls Secret)" -}}
{{- end -}}
{{- if and .Values.vault.enabled .Values.vault.renderConfig (not .Values.vault.configTemplate) -}}
{{- fail "vault.renderConfig needs vault.configTemplate (and vault.configSecretPath)" -}}
{{- end -}}
{{- $source := toString .Values.secrets.source -}}
{{- if not (has $source (list "sealed" "vault")) -}}
{{- fail (printf "secrets.source must be sealed or vault, not %q: every replica must read the same generated secrets (docs/secrets.md)" $source) -}}
{{- end -}}
{{- $known := not (or .Values.config.existingSecret (and .Values.vault.enabled .Values.vault.renderConfig)) -}}
{{- $f := default dict .Values.config.file -}}
{{- $provider := toString (dig "secrets" "provider" "file" $f) -}}
{{- if and $known (eq $source "sealed") (ne (toString (dig "store" "driver" "sqlite" $f)) "postgres") -}}
{{- fail "secrets.source sealed keeps the generated secrets in PostgreSQL, sealed under the master key: config.file.store.driver must be postgres (or use secrets.source vault)" -}}
{{- end -}}
{{- if and $known (eq $source "sealed") (eq $provider "vault") -}}
{{- fail "config.file.secrets.provider is vault: set secrets.source vault (Vault then holds the generated secrets; no master key)" -}}
{{- end -}}
{{- if and $known (eq $source "vault") (ne $provider "vault") -}}
{{- fail "secrets.source vault needs config.file.secrets.provider vault, with secrets.vault.address and its auth (docs/secrets.md)" -}}
{{- end -}}
{{- with .Values.secret.masterKey -}}
{{- if ne (len (b64dec .)) 32 -}}
{{- fail "secret.masterKey must be the base64 of exactly 32 bytes: openssl rand -base64 32" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.secret.adminToken (lt (len .Values.secret.adminToken) 16) -}}
{{- fail "secret.adminToken must be at least 16 characters (Gatehouse refuses a shorter GATEHOUSE_ADMIN_TOKEN)" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled .Values.podDisruptionBudget.minAvailable .Values.podDisruptionBudget.maxUnavailable -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
{{- if and (eq (toString .Values.secrets.source) "sealed") (include "gatehouse.createSecret" .) (not .Values.secrets.masterKey.secretName) (not .Values.secret.masterKey) -}}
{{- fail "secrets.source sealed needs the master key: set secret.masterKey (openssl rand -base64 32), or secrets.masterKey.secretName to a Secret you manage" -}}
{{- end -}}
{{- end }}

{{/* Secret holding the master key (secrets.source sealed): the one named,
else the chart's Secret, else one of the release's name the operator
creates (NOTES.txt says how). */}}
{{- define "gatehouse.masterKeySecret" -}}
{{- .Values.secrets.masterKey.secretName | default (include "gatehouse.secretName" .) | default (include "gatehouse.fullname" .) -}}
{{- end }}

{{/* Secret holding gatehouse.yaml, or "" when the ConfigMap holds it. */}}
{{- define "gatehouse.configSecretName" -}}
{{- if .Values.config.existingSecret -}}
{{- .Values.config.existingSecret -}}
{{- else if .Values.config.inSecret -}}
{{- include "gatehouse.secretName" . -}}
{{- end -}}
{{- end }}

{{- define "gatehouse.probeScheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end }}
