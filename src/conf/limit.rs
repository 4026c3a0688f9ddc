//! Rate-limit directives (`auth_jwt_limit_zone`, `auth_jwt_limit`): parsed and checked here,
//! by the master, so that `nginx -t` refuses a bad value with its file and line.

use super::directive::directive;
use super::loc::{JwtLocConf, JwtMainConf};
use crate::limit::{ClaimKey, LimitZoneConf, MAX_LIMIT_ZONES};
use crate::revocation::RedisSource;
use auth_jwt_core::limit::{claim_key, parse_limit_zone, KeyHasher};
use auth_jwt_core::revocation::redis_url::{parse_redis_args, parse_redis_url};
use std::sync::Arc;

directive! {
    /// `auth_jwt_limit_zone <name> key=$v rate=N r/s|r/m [burst=] [size=] [redis=] [sync=]
    /// [nodes=]`.
    LimitZone(cf, mcf: JwtMainConf, args) {
        let parsed = parse_limit_zone(args)?;
        let redis = match &parsed.redis {
            Some(url) => {
                parse_redis_url(url)?;
                let mut args = parse_redis_args(&[url])?;
                let password = args.url.password.take();
                Some(Arc::new(RedisSource { args, password, ca_pem: None }))
            }
            None => None,
        };
        if mcf.limits.iter().any(|z| z.args.name == parsed.name) {
            return Err(format!("duplicate zone \"{}\"", parsed.name).into());
        }
        if mcf.limits.len() >= MAX_LIMIT_ZONES {
            return Err(format!("at most {MAX_LIMIT_ZONES} zones").into());
        }
        let key = cf.complex_value(&parsed.key, "key")?;
        let claim = match claim_key(&parsed.key) {
            Some(name) => {
                let index = cf.variable_index(&format!("jwt_claim_{name}"))?;
                Some(ClaimKey { name, index })
            }
            None => None,
        };
        let hasher = KeyHasher::new(&parsed.name);
        mcf.limits.push(LimitZoneConf { args: parsed, key, claim, hasher, redis });
        Ok(())
    }
}

directive! {
    /// `auth_jwt_limit <name>`: several per level add up; each names a zone declared before.
    Limit(cf, lcf: JwtLocConf, args) {
        let name = args[0];
        let mcf = cf.main_conf()?;
        let Some(i) = mcf.limits.iter().position(|z| z.args.name == name) else {
            return Err(format!("unknown auth_jwt_limit_zone \"{name}\"").into());
        };
        let limits = lcf.limits.get_or_insert_with(Vec::new);
        if limits.contains(&i) {
            return Err(format!("zone \"{name}\" is duplicate").into());
        }
        limits.push(i);
        Ok(())
    }
}
