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
{{- if and .Values.serverSecrets.fromSecret (not (include "gatehouse.secretName" .)) -}}
{{- fail "serverSecrets.fromSecret needs a Secret: set secret.existingSecret or secret.create" -}}
{{- end -}}
{{- if or .Values.secret.auditLogKey .Values.secret.auditLogPub -}}
{{- if not (and .Values.secret.auditLogKey .Values.secret.auditLogPub) -}}
{{- fail "secret.auditLogKey and secret.auditLogPub go together: the contents of log.key and log.pub from one audit dir (docs/scaling.md)" -}}
{{- end -}}
{{- $pub := splitList "+" (trim .Values.secret.auditLogPub) -}}
{{- if or (lt (len $pub) 3) (not (hasPrefix (printf "PRIVATE+KEY+%s+%s+" (index $pub 0) (index $pub 1)) (trim .Values.secret.auditLogKey))) -}}
{{- fail "secret.auditLogKey and secret.auditLogPub are not one key pair (log.key starts PRIVATE+KEY+<origin>+<hash>+, log.pub <origin>+<hash>+)" -}}
{{- end -}}
{{- $origin := include "gatehouse.auditOrigin" . -}}
{{- if and $origin (eq (include "gatehouse.auditBackend" .) "postgres") (ne (index $pub 0) $origin) -}}
{{- fail (printf "secret.auditLogKey is named %q but the audit origin is %q: make the key with audit.origin %s (docs/scaling.md), or set config.file.audit.origin" (index $pub 0) $origin $origin) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.serverSecrets.fromSecret .Values.secret.create (not .Values.secret.existingSecret) (eq (include "gatehouse.auditBackend" .) "postgres") (not .Values.secret.auditLogKey) -}}
{{- fail "serverSecrets.fromSecret with the audit log in PostgreSQL needs secret.auditLogKey and secret.auditLogPub: every replica must sign the one log with the same key (docs/scaling.md)" -}}
{{- end -}}
{{- if and .Values.serverSecrets.fromSecret (dig "audit" "dir" "" (default dict .Values.config.file)) -}}
{{- fail "serverSecrets.fromSecret seeds the audit key into /var/lib/gatehouse/data/audit: leave config.file.audit.dir unset" -}}
{{- end -}}
{{- with .Values.secret.serverSecretBase64 -}}
{{- if ne (len (b64dec .)) 32 -}}
{{- fail "secret.serverSecretBase64 must be the base64 of exactly 32 bytes: head -c 32 /dev/urandom | base64" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.secret.adminToken (lt (len .Values.secret.adminToken) 16) -}}
{{- fail "secret.adminToken must be at least 16 characters (Gatehouse refuses a shorter GATEHOUSE_ADMIN_TOKEN)" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled .Values.podDisruptionBudget.minAvailable .Values.podDisruptionBudget.maxUnavailable -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
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
