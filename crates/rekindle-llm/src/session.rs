//! A run's access to models: every call goes through the response cache, the budget and the
//! meter. Rendering holds one `Session` per run.

use crate::cache::{self, Cache, Payload};
use crate::error::LlmError;
use crate::meter::{Budget, CallRecord, Meter, PriceTable};
use crate::request::{Request, Response};
use crate::{Provider, TokenSink};
use std::sync::Mutex;
use std::time::Instant;

/// Whether the cache may be bypassed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serve hits from the cache, call the model on a miss and remember the answer.
    Normal,
    /// Only the cache: the first miss is an error (`--offline`, `--locked`).
    Offline,
}

pub struct Session {
    pub cache: Option<Cache>,
    pub mode: Mode,
    pub budget: Budget,
    pub prices: PriceTable,
    meter: Mutex<Meter>,
    warnings: Mutex<Vec<String>>,
}

/// What one call produced, with how it was accounted.
#[derive(Debug)]
pub struct Outcome {
    pub response: Response,
    pub record: CallRecord,
}

impl Session {
    pub fn new(cache: Option<Cache>, mode: Mode, budget: Budget, prices: PriceTable) -> Session {
        Session {
            cache,
            mode,
            budget,
            prices,
            meter: Mutex::new(Meter::default()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    fn warn(&self, w: String) {
        if let Ok(mut v) = self.warnings.lock() {
            v.push(w);
        }
    }

    /// Problems met along the way that did not stop the run (damaged cache entries, …).
    pub fn take_warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    pub fn totals(&self) -> crate::meter::Totals {
        self.meter
            .lock()
            .map(|m| m.totals.clone())
            .unwrap_or_default()
    }

    pub fn summary(&self) -> String {
        self.meter.lock().map(|m| m.summary()).unwrap_or_default()
    }

    /// Answers `req` with `provider`, from the cache when it can.
    pub async fn call(
        &self,
        provider: &dyn Provider,
        req: &Request,
        sink: &mut dyn TokenSink,
    ) -> Result<Outcome, LlmError> {
        let kind = provider.kind();
        let key = cache::key(kind, req);
        if let Some(c) = &self.cache {
            match c.get(&key) {
                Ok(Some(p)) => {
                    sink.token(&p.response.text);
                    let record = CallRecord {
                        provider: kind.as_str().to_string(),
                        model: p.response.model.clone(),
                        key,
                        usage: p.response.usage,
                        duration_ms: 0,
                        cost: 0.0,
                        cache_hit: true,
                    };
                    self.record(record.clone());
                    return Ok(Outcome {
                        response: p.response,
                        record,
                    });
                }
                Ok(None) => {}
                Err(e) => self.warn(e.to_string()),
            }
        }
        if self.mode == Mode::Offline {
            return Err(LlmError::CacheMiss { key });
        }
        if let Ok(m) = self.meter.lock() {
            m.check(&self.budget).map_err(|reached| LlmError::Budget {
                what: reached.to_string(),
            })?;
        }
        let started = Instant::now();
        let response = provider.complete(req, sink).await?;
        let duration_ms = started.elapsed().as_millis() as u64;
        let cost = self.prices.cost(kind, &req.model, &response.usage);
        if let Some(c) = &self.cache {
            let payload = Payload {
                key: key.clone(),
                provider: kind,
                response: response.clone(),
                created: cache::now(),
                duration_ms,
                request: Some(req.clone()),
            };
            if let Err(e) = c.put(&payload) {
                self.warn(format!("could not store a reply in the cache: {e}"));
            }
        }
        let record = CallRecord {
            provider: kind.as_str().to_string(),
            model: response.model.clone(),
            key,
            usage: response.usage,
            duration_ms,
            cost,
            cache_hit: false,
        };
        self.record(record.clone());
        Ok(Outcome { response, record })
    }

    fn record(&self, r: CallRecord) {
        if let Ok(mut m) = self.meter.lock() {
            m.record(r);
        }
    }
}
