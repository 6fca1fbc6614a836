//! A server that answers the check and then never acknowledges the
//! goodbye (QUIT, Connection.Close, DISCONNECT, Terminate, COM_QUIT): the
//! probe passes, and well within its timeout.

use std::time::Duration;

use super::servers::{Behaviour, amqp_method, pg_message, serve};
use super::{Run, check};

/// Long enough that a goodbye waited for inside the attempt would turn
/// the pass into a timeout; the goodbye's own bound is 250 ms.
const TIMEOUT: Duration = Duration::from_secs(3);

fn passes_without_waiting(kind: &str, target: &str, steps: Vec<(&[u8], Vec<u8>)>) -> Run {
    let addr = serve(Behaviour::Script(
        steps.into_iter().map(|(w, r)| (w.to_vec(), r)).collect(),
    ));
    let target = target.replace("{a}", &addr.to_string());
    let r = check(&format!(
        "kind = \"{kind}\"\ntarget = \"{target}\"\ntimeout = \"{}s\"",
        TIMEOUT.as_secs()
    ));
    assert_eq!((r.status.as_str(), r.exit), ("pass", Some(0)), "{r:?}");
    assert!(
        r.elapsed < TIMEOUT,
        "{kind} took {:?}: the goodbye was waited for",
        r.elapsed
    );
    r
}

#[test]
fn redis_passes_when_the_server_never_answers_quit() {
    passes_without_waiting("redis", "redis://{a}/0", vec![(b"PING", b"+PONG\r\n".to_vec())]);
}

#[test]
fn mqtt_passes_when_the_broker_ignores_disconnect() {
    passes_without_waiting("mqtt", "mqtt://{a}", vec![(b"MQTT", vec![0x20, 0x02, 0x00, 0x00])]);
}

#[test]
fn amqp_passes_when_the_broker_never_sends_close_ok() {
    let long = |s: &[u8]| [&(s.len() as u32).to_be_bytes()[..], s].concat();
    let start = [&[0u8, 9][..], &[0, 0, 0, 0], &long(b"PLAIN"), &long(b"en_US")].concat();
    let tune = [
        &2047u16.to_be_bytes()[..],
        &131_072u32.to_be_bytes(),
        &0u16.to_be_bytes(),
    ]
    .concat();
    passes_without_waiting(
        "amqp",
        "amqp://{a}/",
        vec![
            (b"AMQP\x00\x00\x09\x01", amqp_method(0, 10, 10, &start)),
            (b"PLAIN", amqp_method(0, 10, 30, &tune)),
            // Tune-Ok and Connection.Open arrive together.
            (&[0, 10, 0, 40], amqp_method(0, 10, 41, &[0])),
            (&[0, 20, 0, 10], amqp_method(1, 20, 11, &[0, 0, 0, 0])),
        ],
    );
}

#[test]
fn postgres_passes_when_the_server_ignores_terminate() {
    let field = |name: &str, oid: u32| {
        [
            name.as_bytes(),
            &[0],
            &0u32.to_be_bytes(),
            &0u16.to_be_bytes(),
            &oid.to_be_bytes(),
            &(-1i16).to_be_bytes(),
            &(-1i32).to_be_bytes(),
            &0u16.to_be_bytes(),
        ]
        .concat()
    };
    let ready = pg_message(b'Z', b"I");
    let row = [
        pg_message(
            b'T',
            &[
                &2u16.to_be_bytes()[..],
                &field("?column?", 23),
                &field("current_setting", 25),
            ]
            .concat(),
        ),
        pg_message(
            b'D',
            &[
                &2u16.to_be_bytes()[..],
                &1u32.to_be_bytes(),
                b"1",
                &4u32.to_be_bytes(),
                b"16.0",
            ]
            .concat(),
        ),
        pg_message(b'C', b"SELECT 1\0"),
        ready.clone(),
    ]
    .concat();
    let r = passes_without_waiting(
        "postgres",
        "postgres://probe@{a}/d",
        vec![
            (&[0x04, 0xd2, 0x16, 0x2f], b"N".to_vec()),
            (b"user\0", [pg_message(b'R', &[0, 0, 0, 0]), ready].concat()),
            (b"SELECT 1", row),
        ],
    );
    assert!(r.message.contains("PostgreSQL 16.0"), "{r:?}");
}

/// A MySQL packet: 3-byte length, sequence number, payload.
fn my_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    [&(payload.len() as u32).to_le_bytes()[..3], &[seq], payload].concat()
}

/// A text result set of one row (the protocol before DEPRECATE_EOF).
fn my_rows(values: &[&str]) -> Vec<u8> {
    let lenenc = |s: &[u8]| [&[s.len() as u8][..], s].concat();
    let eof = [0xfe, 0, 0, 2, 0];
    let mut seq = 1;
    let mut out = my_packet(seq, &[values.len() as u8]);
    for (i, _) in values.iter().enumerate() {
        seq += 1;
        let name = format!("c{i}");
        let def = [
            &lenenc(b"def")[..],
            &lenenc(b""),
            &lenenc(b""),
            &lenenc(b""),
            &lenenc(name.as_bytes()),
            &lenenc(b""),
            &[0x0c, 0x21, 0],
            &255u32.to_le_bytes(),
            &[0xfd, 0, 0, 0, 0, 0],
        ]
        .concat();
        out.extend(my_packet(seq, &def));
    }
    seq += 1;
    out.extend(my_packet(seq, &eof));
    seq += 1;
    let row: Vec<u8> = values.iter().flat_map(|v| lenenc(v.as_bytes())).collect();
    out.extend(my_packet(seq, &row));
    seq += 1;
    out.extend(my_packet(seq, &eof));
    out
}

#[test]
fn mysql_passes_when_the_server_ignores_com_quit() {
    let caps: u32 = 0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x1_0000 | 0x2_0000 | 0x8_0000;
    let handshake = [
        &[0x0a][..],
        b"5.7.0-fake\0",
        &1u32.to_le_bytes(),
        b"abcdefgh\0",
        &(caps as u16).to_le_bytes(),
        &[0x21],
        &2u16.to_le_bytes(),
        &((caps >> 16) as u16).to_le_bytes(),
        &[21],
        &[0; 10],
        b"ijklmnopqrst\0",
        b"mysql_native_password\0",
    ]
    .concat();
    let ok = my_packet(2, &[0, 0, 0, 2, 0, 0, 0]);
    let r = passes_without_waiting(
        "mysql",
        "mysql://probe@{a}/d",
        vec![
            (b"", my_packet(0, &handshake)),
            (b"mysql_native_password", ok),
            (b"@@wait_timeout", my_rows(&["28800"])),
            (b"VERSION()", my_rows(&["1", "5.7.0-fake"])),
        ],
    );
    assert!(r.message.contains("MySQL 5.7.0-fake"), "{r:?}");
}
