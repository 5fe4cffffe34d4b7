//! Accounting: every call's tokens, time and cost, summed per run; and budgets that stop a run
//! cleanly before it spends more than allowed.

use crate::request::Usage;
use crate::ProviderKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Prices in US dollars per million tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Input tokens served from the provider's prompt cache (defaults to `input`).
    #[serde(default)]
    pub cached_input: Option<f64>,
}

impl Price {
    pub fn cost(&self, u: &Usage) -> f64 {
        let cached = u.cached_tokens.min(u.input_tokens) as f64;
        let fresh = u.input_tokens as f64 - cached;
        (fresh * self.input
            + cached * self.cached_input.unwrap_or(self.input)
            + u.output_tokens as f64 * self.output)
            / 1e6
    }
}

/// Model name → price. Local models cost nothing.
#[derive(Clone, Debug, Default)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl PriceTable {
    pub fn cost(&self, kind: ProviderKind, model: &str, u: &Usage) -> f64 {
        if kind == ProviderKind::Local {
            return 0.0;
        }
        self.0.get(model).map_or(0.0, |p| p.cost(u))
    }

    pub fn knows(&self, model: &str) -> bool {
        self.0.contains_key(model)
    }
}

/// One model call as accounted.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    pub provider: String,
    pub model: String,
    pub key: String,
    pub usage: Usage,
    pub duration_ms: u64,
    pub cost: f64,
    pub cache_hit: bool,
}

/// Limits for one run; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Budget {
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost: Option<f64>,
}

/// Totals for a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub model_calls: u64,
    pub cache_hits: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub tokens_cached: u64,
    pub cost: f64,
    pub model_seconds: f64,
}

#[derive(Debug, Default)]
pub struct Meter {
    pub calls: Vec<CallRecord>,
    pub totals: Totals,
}

impl Meter {
    pub fn record(&mut self, r: CallRecord) {
        let t = &mut self.totals;
        if r.cache_hit {
            t.cache_hits += 1;
        } else {
            t.model_calls += 1;
            t.tokens_in += r.usage.input_tokens;
            t.tokens_out += r.usage.output_tokens;
            t.tokens_cached += r.usage.cached_tokens;
            t.cost += r.cost;
            t.model_seconds += Duration::from_millis(r.duration_ms).as_secs_f64();
        }
        self.calls.push(r);
    }

    /// Whether one more model call fits the budget; which limit is reached when it does not.
    pub fn check(&self, b: &Budget) -> Result<(), BudgetReached> {
        let t = &self.totals;
        if let Some(max) = b.max_calls {
            if t.model_calls >= max {
                return Err(BudgetReached::Calls { max });
            }
        }
        if let Some(max) = b.max_tokens {
            let used = t.tokens_in + t.tokens_out;
            if used >= max {
                return Err(BudgetReached::Tokens { used, max });
            }
        }
        if let Some(max) = b.max_cost {
            if t.cost >= max {
                return Err(BudgetReached::Cost { spent: t.cost, max });
            }
        }
        Ok(())
    }

    /// One line for the end of a run.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        format!(
            "{} model call{}, {} cache hit{}, {} tokens in ({} cached), {} out, ${:.4}, {:.1}s in models",
            t.model_calls,
            if t.model_calls == 1 { "" } else { "s" },
            t.cache_hits,
            if t.cache_hits == 1 { "" } else { "s" },
            t.tokens_in,
            t.tokens_cached,
            t.tokens_out,
            t.cost,
            t.model_seconds
        )
    }
}

/// The budget limit a run reached (rekindle.toml's `[budget]`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BudgetReached {
    #[error("{max} model calls (max-calls)")]
    Calls { max: u64 },
    #[error("{used} of {max} tokens used (max-tokens)")]
    Tokens { used: u64, max: u64 },
    #[error("${spent:.4} of ${max:.2} spent (max-cost)")]
    Cost { spent: f64, max: f64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_and_budgets() {
        let p = Price {
            input: 1.0,
            output: 2.0,
            cached_input: Some(0.5),
        };
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 500_000,
            cached_tokens: 200_000,
        };
        assert!((p.cost(&u) - (0.8 + 0.1 + 1.0)).abs() < 1e-9);
        let mut m = Meter::default();
        let b = Budget {
            max_calls: Some(1),
            ..Budget::default()
        };
        assert!(m.check(&b).is_ok());
        m.record(CallRecord {
            provider: "openai".into(),
            model: "x".into(),
            key: "k".into(),
            usage: u,
            duration_ms: 10,
            cost: 1.9,
            cache_hit: false,
        });
        assert!(m.check(&b).unwrap_err().to_string().contains("max-calls"));
        assert!(m.summary().starts_with("1 model call, 0 cache hits"));
    }
}
