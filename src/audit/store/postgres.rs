//! The shared store: PostgreSQL, for many runners (one CronJob per region)
//! sharing history and state. Writers serialise on a transaction-scoped
//! advisory lock; a runner's hold on an environment is a session advisory
//! lock, released by the server when the runner's connection ends, however
//! it ends; a notification is claimed by one `UPDATE ... FOR UPDATE SKIP
//! LOCKED`, so exactly one runner gets it.
//!
//! The API is synchronous (the audit cycle is): each call drives the
//! connection on the store's own single-threaded runtime. A server calls it
//! from a blocking task.

use std::collections::HashMap;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls};

use super::sql::{Backend, Conn, Row, StoreError, Val};

/// Every statement and the connection itself are bounded.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The advisory lock all writers of one store share.
const WRITE_LOCK: i64 = 0x656e_7667_6174_6501;

pub struct Postgres {
    rt: Runtime,
    client: Client,
    held: HashMap<String, i64>,
}

struct On<'a, C> {
    rt: &'a Runtime,
    c: &'a C,
}

impl Postgres {
    pub fn open(url: &str) -> Result<Postgres, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::new(format!("cannot start a runtime: {e}")))?;
        let mut config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::new(format!("not a PostgreSQL URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("envgate-audit");
        let client = rt.block_on(async {
            let connect = async {
                if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
                    let (client, conn) = config.connect(NoTls).await?;
                    tokio::spawn(conn);
                    Ok(client)
                } else {
                    let net = crate::probes::Net::new();
                    let verifier = net.verifier(None).map_err(Connect::Tls)?;
                    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(net.tls_config(verifier));
                    let (client, conn) = config.connect(tls).await?;
                    tokio::spawn(conn);
                    Ok(client)
                }
            };
            match tokio::time::timeout(TIMEOUT, connect).await {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(Connect::Pg(e))) => Err(StoreError::new(format!("cannot connect: {}", pg_text(&e)))),
                Ok(Err(Connect::Tls(e))) => Err(StoreError::new(format!("cannot connect: {e}"))),
                Err(_) => Err(StoreError::new("cannot connect: timed out")),
            }
        })?;
        Ok(Postgres {
            rt,
            client,
            held: HashMap::new(),
        })
    }
}

enum Connect {
    Pg(tokio_postgres::Error),
    Tls(String),
}

impl From<tokio_postgres::Error> for Connect {
    fn from(e: tokio_postgres::Error) -> Connect {
        Connect::Pg(e)
    }
}

/// The server's message when there is one (`relation ... does not exist`).
fn pg_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

fn params(vals: &[Val]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    vals.iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                Val::Int(i) => Box::new(*i),
                Val::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

fn row(r: &tokio_postgres::Row) -> Row {
    (0..r.len())
        .map(|i| match *r.columns()[i].type_() {
            Type::INT8 => Val::Int(r.get::<_, Option<i64>>(i)),
            Type::INT4 => Val::Int(r.get::<_, Option<i32>>(i).map(i64::from)),
            Type::INT2 => Val::Int(r.get::<_, Option<i16>>(i).map(i64::from)),
            Type::BOOL => Val::Int(r.get::<_, Option<bool>>(i).map(i64::from)),
            _ => Val::Text(r.try_get::<_, Option<String>>(i).ok().flatten()),
        })
        .collect()
}

trait Gc {
    fn client_query<'a>(
        &'a self,
        sql: &'a str,
        p: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> + 'a;
    fn client_execute<'a>(
        &'a self,
        sql: &'a str,
        p: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + 'a;
    fn client_batch<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + 'a;
}

impl Gc for Client {
    fn client_query<'a>(
        &'a self,
        sql: &'a str,
        p: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> + 'a {
        self.query(sql, p)
    }
    fn client_execute<'a>(
        &'a self,
        sql: &'a str,
        p: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + 'a {
        self.execute(sql, p)
    }
    fn client_batch<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + 'a {
        self.batch_execute(sql)
    }
}

impl Gc for tokio_postgres::Transaction<'_> {
    fn client_query<'a>(
        &'a self,
        sql: &'a str,
        p: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>> + 'a {
        self.query(sql, p)
    }
    fn client_execute<'a>(
        &'a self,
        sql: &'a str,
        p: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + 'a {
        self.execute(sql, p)
    }
    fn client_batch<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + 'a {
        self.batch_execute(sql)
    }
}

fn bounded<T>(rt: &Runtime, f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> Result<T, StoreError> {
    rt.block_on(async {
        match tokio::time::timeout(TIMEOUT, f).await {
            Ok(r) => r.map_err(|e| StoreError::new(pg_text(&e))),
            Err(_) => Err(StoreError::new("the store did not answer within 30s")),
        }
    })
}

impl<C: Gc> Conn for On<'_, C> {
    fn exec(&mut self, sql: &str, vals: &[Val]) -> Result<u64, StoreError> {
        let owned = params(vals);
        let p: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
        bounded(self.rt, self.c.client_execute(sql, &p))
    }
    fn query(&mut self, sql: &str, vals: &[Val]) -> Result<Vec<Row>, StoreError> {
        let owned = params(vals);
        let p: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
        Ok(bounded(self.rt, self.c.client_query(sql, &p))?
            .iter()
            .map(row)
            .collect())
    }
    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        bounded(self.rt, self.c.client_batch(sql))
    }
}

impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn conn(&mut self) -> &mut dyn Conn {
        self
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let tx = bounded(&self.rt, self.client.transaction())?;
        let mut on = On { rt: &self.rt, c: &tx };
        on.query("SELECT pg_advisory_xact_lock($1)", &[WRITE_LOCK.into()])?;
        match f(&mut on) {
            Ok(()) => bounded(&self.rt, tx.commit()),
            Err(e) => {
                let _ = bounded(&self.rt, tx.rollback());
                Err(e)
            }
        }
    }

    fn try_lock(&mut self, env: &str) -> Result<bool, StoreError> {
        let key = crate::select::stable_hash(&format!("envgate-audit:{env}")) as i64;
        let rows = self.query("SELECT pg_try_advisory_lock($1)", &[key.into()])?;
        let got = rows.first().is_some_and(|r| r[0].i() == 1);
        if got {
            self.held.insert(env.to_string(), key);
        }
        Ok(got)
    }

    fn unlock(&mut self, env: &str) -> Result<(), StoreError> {
        if let Some(key) = self.held.remove(env) {
            self.query("SELECT pg_advisory_unlock($1)", &[key.into()])?;
        }
        Ok(())
    }

    fn claim(
        &mut self,
        envs: &[String],
        now: i64,
        runner: &str,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let mut params: Vec<Val> = vec![runner.into(), lease_until.into(), now.into(), limit.into()];
        params.extend(envs.iter().map(Val::from));
        let sql = format!(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM outbox \
             WHERE state = 'pending' AND next_at <= $3 AND claimed_until <= $3 AND env IN ({}) ORDER BY id LIMIT $4 \
             FOR UPDATE SKIP LOCKED) RETURNING {}",
            super::sql::placeholders(5, envs.len()),
            super::outbox::COLUMNS
        );
        let mut rows = self.query(&sql, &params)?;
        rows.sort_by_key(|r| r[0].i());
        Ok(rows)
    }

    fn vacuum(&mut self) -> Result<(), StoreError> {
        self.batch("VACUUM")
    }
}

impl Conn for Postgres {
    fn exec(&mut self, sql: &str, vals: &[Val]) -> Result<u64, StoreError> {
        On {
            rt: &self.rt,
            c: &self.client,
        }
        .exec(sql, vals)
    }
    fn query(&mut self, sql: &str, vals: &[Val]) -> Result<Vec<Row>, StoreError> {
        On {
            rt: &self.rt,
            c: &self.client,
        }
        .query(sql, vals)
    }
    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        On {
            rt: &self.rt,
            c: &self.client,
        }
        .batch(sql)
    }
}
