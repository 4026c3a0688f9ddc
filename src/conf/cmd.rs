//! Directive bodies: each parses its arguments with a pure parser from
//! `auth_jwt_core::directive` and writes its level's configuration; `directive.rs` is the
//! shell NGINX calls.

use std::sync::Arc;

use super::directive::{directive, set_once};
use super::loc::{IdentityHeader, JwtLocConf, JwtMainConf, Mode, Requirement, MAX_KEY_FILE};
use crate::error::Error;
use crate::variables::{PathVar, Source};
use auth_jwt_core::directive::{
    parse_algorithms, parse_auth_jwt, parse_cache, parse_fail_mode, parse_header_name, parse_path,
    parse_require, parse_resource_metadata, parse_scope, parse_token_type, parse_variable_name,
    token_in_query, AuthJwtArgs,
};
use auth_jwt_core::jwks;
use auth_jwt_core::metrics::FileReport;

directive! {
    /// `auth_jwt off | <realm> [token=$variable]`.
    AuthJwt(cf, lcf: JwtLocConf, args) {
        if lcf.mode.is_some() {
            return Err(Error::Duplicate);
        }
        lcf.mode = Some(match parse_auth_jwt(args)? {
            AuthJwtArgs::Off => Mode::Off,
            AuthJwtArgs::On { realm, token } => Mode::On {
                token: match token {
                    Some(t) => {
                        // A warning, not an error: some clients (WebSocket, EventSource)
                        // cannot send a header.
                        if token_in_query(t) {
                            cf.warn(format_args!(
                                "\"auth_jwt\" takes the token from the query string (token={t}): NGINX writes it to the access log and to every error-log line about the request (\"request:\"), the module's own denials included; prefer a header or a cookie"
                            ));
                        }
                        Some(cf.complex_value(t, "token variable")?)
                    }
                    None => None,
                },
                realm: cf.complex_value(realm, "realm")?,
                declared_at: cf.position(),
            },
        });
        Ok(())
    }
}

directive! {
    /// `auth_jwt_key_file <path>`: read here, by the master (workers may not read it).
    KeyFile(cf, lcf: JwtLocConf, args) {
        let path = cf.full_path(args[0])?;
        let parsed = read_key_file(&path).map_err(|e| format!("\"{path}\": {e}"))?;
        for skipped in &parsed.skipped {
            cf.warn(format_args!("auth_jwt: \"{path}\": key not used: {skipped}"));
        }
        let mcf = cf.main_conf()?;
        if mcf.files.iter().all(|f| f.path != path) {
            let keys = parsed.keys.keys();
            mcf.files.push(FileReport {
                path: path.clone(),
                kids: keys.iter().filter_map(|k| k.kid.clone()).collect(),
                algorithms: parsed.keys.algorithms().iter().map(|a| a.name()).collect(),
            });
        }
        // Each unique while this level is parsed: merge has not shared it yet.
        match &mut lcf.keys {
            None => lcf.keys = Some(Arc::new(parsed.keys)),
            Some(keys) => Arc::get_mut(keys)
                .ok_or("key set already shared")?
                .extend(parsed.keys),
        }
        match &mut lcf.signing_only {
            None => lcf.signing_only = Some(Arc::new(parsed.signing_only)),
            Some(keys) => Arc::get_mut(keys)
                .ok_or("key set already shared")?
                .extend(parsed.signing_only),
        }
        match &mut lcf.decrypt {
            None => lcf.decrypt = Some(Arc::new(parsed.decrypt)),
            Some(keys) => Arc::get_mut(keys)
                .ok_or("key set already shared")?
                .extend(parsed.decrypt),
        }
        Ok(())
    }
}

directive! {
    /// `auth_jwt_key_request <uri>`, repeatable: keys from a subrequest (variables allowed).
    KeyRequest(cf, lcf: JwtLocConf, args) {
        let uri = args[0];
        if !uri.starts_with('/') && !uri.contains('$') {
            return Err(Error::Refused(format!("invalid value \"{uri}\": a key request URI starts with \"/\"")));
        }
        let cv = cf.complex_value(uri, "key request URI")?;
        lcf.key_requests.get_or_insert_with(Vec::new).push(cv);
        Ok(())
    }
}

directive! {
    /// `auth_jwt_type signed | encrypted | nested`.
    TokenTypeSet(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.token_type, || parse_token_type(args[0]))
    }
}

fn read_key_file(path: &str) -> Result<jwks::Parsed, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err("file is larger than 1 MiB".into());
    }
    let parsed = jwks::parse_key_file(&bytes).map_err(|e| e.to_string())?;
    if parsed.keys.is_empty() && parsed.decrypt.is_empty() {
        return Err("no usable keys".into());
    }
    Ok(parsed)
}

directive! {
    /// `auth_jwt_issuer <iss> ...`.
    Issuers(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.issuers, || Ok::<_, Error>(owned(args)))
    }
}

directive! {
    /// `auth_jwt_audience <aud> ...`.
    Audiences(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.audiences, || Ok::<_, Error>(owned(args)))
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

directive! {
    /// `auth_jwt_algorithms <alg> ...`.
    Algorithms(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.algorithms, || parse_algorithms(args))
    }
}

directive! {
    /// `auth_jwt_require $value ... [error=401|403]`, repeatable.
    Require(cf, lcf: JwtLocConf, args) {
        let (values, error) = parse_require(args)?;
        let values = values
            .into_iter()
            .map(|v| cf.complex_value(v, "value"))
            .collect::<Result<_, _>>()?;
        lcf.requires
            .get_or_insert_with(Vec::new)
            .push(Requirement { values, error });
        Ok(())
    }
}

directive! {
    /// `auth_jwt_identity_header <name> <claim> [<member> ...]`.
    IdentityHeaderName(cf, lcf: JwtLocConf, args) {
        let lowcase = parse_header_name(args[0])?;
        let claim = parse_path(&args[1..])?;
        let headers = lcf.identity.get_or_insert_with(Vec::new);
        if headers.iter().any(|h| h.lowcase == lowcase) {
            return Err(format!("header \"{}\" is duplicate", args[0]).into());
        }
        headers.push(IdentityHeader {
            name: args[0].to_owned(),
            lowcase,
            claim,
        });
        // Every request of the server loses the client's copies (see JwtSrvConf).
        cf.server_conf()?.add(args[0]);
        Ok(())
    }
}

directive! {
    /// `auth_jwt_claim_set $name <claim> [<member> ...]`.
    ClaimSet(cf, mcf: JwtMainConf, args) {
        add_path_var(cf, mcf, Source::Claims, args)
    }
}

directive! {
    /// `auth_jwt_header_set $name <member> ...`.
    HeaderSet(cf, mcf: JwtMainConf, args) {
        add_path_var(cf, mcf, Source::Header, args)
    }
}

fn add_path_var(
    cf: &mut super::directive::Cf,
    mcf: &mut JwtMainConf,
    source: Source,
    args: &[&str],
) -> Result<(), Error> {
    let name = parse_variable_name(args[0])?;
    let var = Box::new(PathVar {
        source,
        path: parse_path(&args[1..])?,
    });
    cf.add_path_var(name, &var)?;
    mcf.vars.push(var);
    Ok(())
}

directive! {
    /// `auth_jwt_scope <scope> ...`.
    Scope(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.scope, || parse_scope(args))
    }
}

directive! {
    /// `auth_jwt_resource_metadata <url>`.
    ResourceMetadata(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.resource_metadata, || parse_resource_metadata(args[0]))
    }
}

directive! {
    /// `auth_jwt_fail_mode closed | open`.
    FailModeSet(_, lcf: JwtLocConf, args) {
        set_once(&mut lcf.fail_mode, || parse_fail_mode(args[0]))
    }
}

directive! {
    /// `auth_jwt_cache <entries> | off`.
    Cache(_, mcf: JwtMainConf, args) {
        set_once(&mut mcf.cache, || parse_cache(args[0]))
    }
}
