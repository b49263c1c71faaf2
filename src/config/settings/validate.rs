//! The rules that involve more than one key.

use super::*;
use crate::config::parse::ConfigError;

impl Settings {
    /// Rules that involve more than one key, checked in this order (the first broken one is
    /// reported).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_ports()?;
        self.validate_tls()?;
        self.validate_files()?;
        self.validate_database_url()?;
        self.validate_audit_client_names()?;
        self.validate_timeouts()?;
        self.validate_kserve()
    }

    fn validate_ports(&self) -> Result<(), ConfigError> {
        if self.port != 0 && self.port == self.metrics_port {
            return Err(ConfigError::invalid(
                "metrics_port",
                &self.metrics_port.to_string(),
                "PORT and METRICS_PORT must differ",
            ));
        }
        if let Some(compat) = self.compat_http_port
            && compat != 0
            && (compat == self.port || compat == self.metrics_port)
        {
            return Err(ConfigError::invalid(
                "compat_http_port",
                &compat.to_string(),
                "COMPAT_HTTP_PORT must differ from PORT and METRICS_PORT",
            ));
        }
        Ok(())
    }

    /// Files read later (token, CA, password) must be readable now, not at first use.
    fn validate_files(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.auth.api_token_file {
            require_readable_file("api_token_file", path)?;
        }
        if let Some(path) = &self.argocd.token_file {
            require_readable_file("argocd_token_file", path)?;
        }
        if let Some(path) = &self.audit_client_ca_file {
            require_readable_file("audit_client_ca_file", path)?;
        }
        if let Some(path) = &self.database_password_file {
            require_readable_file("database_password_file", path)?;
            if self.database_url.is_none() {
                return Err(ConfigError::invalid(
                    "database_password_file",
                    &path.display().to_string(),
                    "DATABASE_PASSWORD_FILE needs DATABASE_URL (it is the PostgreSQL password)",
                ));
            }
        }
        Ok(())
    }

    fn validate_database_url(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url
            && !(url.expose().starts_with("postgres://")
                || url.expose().starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "database_url",
                "<redacted>",
                "expected postgres://user@host:port/database (SQLite is the default when unset)",
            ));
        }
        Ok(())
    }

    /// An allow-list that nothing enforces is worse than none: the operator believes audit
    /// posts are restricted while any client with the token (or none, without TLS) gets in.
    fn validate_audit_client_names(&self) -> Result<(), ConfigError> {
        if !self.audit_client_names.is_empty()
            && (self.audit_client_ca_file.is_none() || self.tls.mode == TlsMode::Off)
        {
            return Err(ConfigError::invalid(
                "audit_client_names",
                &self.audit_client_names.join(","),
                "AUDIT_CLIENT_NAMES needs AUDIT_CLIENT_CA_FILE and TLS (TLS_MODE is not off)",
            ));
        }
        Ok(())
    }

    fn validate_timeouts(&self) -> Result<(), ConfigError> {
        let must_be_positive = [
            ("body_read_timeout", self.body_read_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("tls_reload_interval", self.tls.reload_interval),
        ];
        match must_be_positive.into_iter().find(|(_, d)| d.is_zero()) {
            Some((key, _)) => Err(ConfigError::invalid(key, "0s", "must be greater than zero")),
            None => Ok(()),
        }
    }

    fn validate_kserve(&self) -> Result<(), ConfigError> {
        let has_model = self.kserve.anomaly_detector_service.is_some()
            || self.kserve.predictive_analytics_service.is_some()
            || self.kserve.anomaly_detector_url.is_some()
            || self.kserve.predictive_analytics_url.is_some();
        if self.kserve.enabled && !has_model {
            return Err(ConfigError::invalid(
                "enable_kserve_integration",
                "true",
                "KServe is enabled but no model is configured: set KSERVE_ANOMALY_DETECTOR_SERVICE \
                 and/or KSERVE_PREDICTIVE_ANALYTICS_SERVICE, or set ENABLE_KSERVE_INTEGRATION=false",
            ));
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let (cert, key) = (&self.tls.cert_file, &self.tls.key_file);
        match self.tls.mode {
            TlsMode::Off => Ok(()),
            TlsMode::Files | TlsMode::Auto if cert.is_some() || key.is_some() => {
                let cert = cert.as_ref().ok_or_else(|| {
                    ConfigError::invalid("tls_cert_file", "", "required when TLS_KEY_FILE is set")
                })?;
                let key = key.as_ref().ok_or_else(|| {
                    ConfigError::invalid("tls_key_file", "", "required when TLS_CERT_FILE is set")
                })?;
                require_readable_file("tls_cert_file", cert)?;
                require_readable_file("tls_key_file", key)
            }
            TlsMode::Files => Err(ConfigError::invalid(
                "tls_cert_file",
                "",
                "TLS_MODE=files needs TLS_CERT_FILE and TLS_KEY_FILE",
            )),
            TlsMode::Auto => Ok(()),
        }
    }
}

fn require_readable_file(key: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| ConfigError::invalid(key, &path.display().to_string(), e.to_string()))
}
