//! The sync thread's Redis connection (redis-rs, synchronous): connect with the master's
//! credentials and CA, read the stream in pages (`XRANGE`) for a full sync and then wait on it
//! (`XREAD BLOCK`). Errors are texts without the password.

use std::time::Duration;

use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates, Value,
};

use super::RedisSource;

/// Entries per `XRANGE`/`XREAD` page.
pub const PAGE: usize = 1000;

impl Conn {
    /// One pipelined round trip (the rate limits' sync).
    pub fn pipeline(&mut self, pipe: &redis::Pipeline) -> Result<Vec<Value>, String> {
        pipe.query(&mut self.con).map_err(|e| text(&e))
    }
}

/// A stream id, `ms-seq`.
pub type Id = (u64, u64);

/// One stream entry: its id, and its fields (or why they could not be read).
pub struct StreamEntry {
    pub id: Id,
    pub fields: Result<Vec<(String, String)>, &'static str>,
}

pub struct Conn {
    con: redis::Connection,
    stream: String,
}

fn text(e: &redis::RedisError) -> String {
    // redis-rs's messages name the address and the server's reply, never the password.
    let s = e.to_string();
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// Connects, authenticates, selects the database; `timeout` bounds each step.
pub fn connect(src: &RedisSource, timeout: Duration) -> Result<Conn, String> {
    let url = &src.args.url;
    let addr = if url.tls {
        ConnectionAddr::TcpTls {
            host: url.host.clone(),
            port: url.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(url.host.clone(), url.port)
    };
    let mut redis_info = RedisConnectionInfo::default().set_db(url.db);
    if let Some(user) = &url.user {
        redis_info = redis_info.set_username(user);
    }
    if let Some(password) = &src.password {
        redis_info = redis_info.set_password(password);
    }
    let info: ConnectionInfo = addr
        .into_connection_info()
        .map_err(|e| text(&e))?
        .set_redis_settings(redis_info);
    let client = match (&src.ca_pem, url.tls) {
        (Some(pem), true) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        _ => Client::open(info),
    }
    .map_err(|e| text(&e))?;
    let con = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| text(&e))?;
    con.set_write_timeout(Some(timeout)).map_err(|e| text(&e))?;
    con.set_read_timeout(Some(timeout)).map_err(|e| text(&e))?;
    Ok(Conn {
        con,
        stream: src.args.stream.clone(),
    })
}

pub fn parse_id(v: &Value) -> Option<Id> {
    let s = match v {
        Value::BulkString(b) => core::str::from_utf8(b).ok()?,
        Value::SimpleString(s) => s.as_str(),
        _ => return None,
    };
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Entries of an `XRANGE` reply (`[[id, [f, v, ...]], ...]`).
fn entries(reply: &Value) -> Result<Vec<StreamEntry>, String> {
    let Value::Array(items) = reply else {
        return Err("unexpected reply to XRANGE".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err("unexpected stream entry".into());
        };
        let (Some(id), Some(fields)) = (pair.first().and_then(parse_id), pair.get(1)) else {
            return Err("stream entry without an id".into());
        };
        let fields = match fields {
            Value::Array(fv) if fv.len() % 2 == 0 => fv
                .chunks(2)
                .map(|c| Some((string(&c[0])?, string(&c[1])?)))
                .collect::<Option<Vec<_>>>()
                .ok_or("a field is not UTF-8 text"),
            _ => Err("fields are not name/value pairs"),
        };
        out.push(StreamEntry { id, fields });
    }
    Ok(out)
}

fn id_arg(id: Id) -> String {
    format!("{}-{}", id.0, id.1)
}

impl Conn {
    /// One page of the stream after `after` (exclusive; `None`: from the start).
    pub fn range(&mut self, after: Option<Id>) -> Result<Vec<StreamEntry>, String> {
        let start = after.map_or("-".into(), |id| format!("({}", id_arg(id)));
        let reply: Value = redis::cmd("XRANGE")
            .arg(&self.stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query(&mut self.con)
            .map_err(|e| text(&e))?;
        entries(&reply)
    }

    /// The id of the stream's newest entry (`None`: empty or absent), to see it recreated.
    pub fn newest(&mut self) -> Result<Option<Id>, String> {
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(&self.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query(&mut self.con)
            .map_err(|e| text(&e))?;
        Ok(entries(&reply)?.first().map(|e| e.id))
    }

    /// Waits up to `block` for entries after `after`.
    pub fn read(&mut self, after: Id, block: Duration) -> Result<Vec<StreamEntry>, String> {
        let stream = self.stream.clone();
        self.read_from(&stream, after, block)
    }

    /// Waits up to `block` for entries of `stream` after `after`.
    pub fn read_from(
        &mut self,
        stream: &str,
        after: Id,
        block: Duration,
    ) -> Result<Vec<StreamEntry>, String> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(PAGE)
            .arg("BLOCK")
            .arg(block.as_millis() as u64);
        let reply: Value = cmd
            .arg("STREAMS")
            .arg(stream)
            .arg(id_arg(after))
            .query(&mut self.con)
            .map_err(|e| text(&e))?;
        xread_entries(&reply)
    }
}

/// The entries of an `XREAD` reply of one stream.
fn xread_entries(reply: &Value) -> Result<Vec<StreamEntry>, String> {
    // RESP2: nil, or [[stream, entries]]; RESP3 servers answer a map.
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => match streams.first() {
            Some(Value::Array(pair)) if pair.len() == 2 => entries(&pair[1]),
            None => Ok(Vec::new()),
            _ => Err("unexpected reply to XREAD".into()),
        },
        Value::Map(streams) => match streams.first() {
            Some((_, v)) => entries(v),
            None => Ok(Vec::new()),
        },
        _ => Err("unexpected reply to XREAD".into()),
    }
}
