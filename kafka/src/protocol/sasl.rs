//! SASL client exchanges for the wire connections: PLAIN and SCRAM-SHA-256/512 (RFC 5802),
//! the mechanisms the StreamApp's `spec.kafka.sasl` offers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

/// The SCRAM iteration counts Kafka accepts: its client's minimum, its controller's maximum.
const SCRAM_ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=16384;

/// A SASL mechanism the operator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl Mechanism {
    /// The mechanism of a `sasl.mechanism` value.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Self::Plain),
            "SCRAM-SHA-256" => Some(Self::ScramSha256),
            "SCRAM-SHA-512" => Some(Self::ScramSha512),
            _ => None,
        }
    }

    /// Its name in SaslHandshake.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The PLAIN message: no authorization id, the user, the password.
pub(crate) fn plain(user: &str, password: &str) -> Vec<u8> {
    format!("\0{user}\0{password}").into_bytes()
}

/// A SCRAM exchange in progress.
pub(crate) struct Scram {
    sha512: bool,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// Starts an exchange with a fresh nonce.
    pub(crate) fn new(mechanism: Mechanism, user: &str, password: &str) -> Result<Self, String> {
        let mut raw = [0u8; 24];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| "no randomness for the SCRAM nonce".to_string())?;
        Ok(Self::with_nonce(
            mechanism,
            user,
            password,
            &B64.encode(raw),
        ))
    }

    pub(crate) fn with_nonce(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        nonce: &str,
    ) -> Self {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Self {
            sha512: mechanism == Mechanism::ScramSha512,
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={user},r={nonce}"),
            server_signature: None,
        }
    }

    /// The client-first message.
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message for the server-first message.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let attr = |key: &str| {
            server_first
                .split(',')
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        if let Some(e) = attr("e") {
            return Err(format!("the broker refused: {e}"));
        }
        let nonce = attr("r").ok_or("server-first without a nonce")?;
        if !nonce.starts_with(&self.nonce) {
            return Err("the broker's nonce does not extend ours".into());
        }
        let salt = B64
            .decode(attr("s").ok_or("server-first without a salt")?)
            .map_err(|_| "the salt is not base64")?;
        let iterations: u32 = attr("i")
            .and_then(|i| i.parse().ok())
            .ok_or("server-first without a valid iteration count")?;
        // The count comes from the network and costs CPU linearly: outside the range Kafka
        // itself allows it is a downgrade (Kafka's client refuses fewer) or a stall (its
        // controller stores no credential with more).
        if !SCRAM_ITERATIONS.contains(&iterations) {
            return Err(format!(
                "the broker asks for {iterations} SCRAM iterations, outside the {}-{} Kafka allows",
                SCRAM_ITERATIONS.start(),
                SCRAM_ITERATIONS.end()
            ));
        }
        let (pbkdf, hmac_alg, digest_alg, len) = if self.sha512 {
            (
                pbkdf2::PBKDF2_HMAC_SHA512,
                hmac::HMAC_SHA512,
                &digest::SHA512,
                64,
            )
        } else {
            (
                pbkdf2::PBKDF2_HMAC_SHA256,
                hmac::HMAC_SHA256,
                &digest::SHA256,
                32,
            )
        };
        let mut salted = vec![0u8; len];
        let rounds = std::num::NonZeroU32::new(iterations).ok_or("zero iterations")?;
        pbkdf2::derive(pbkdf, rounds, &salt, self.password.as_bytes(), &mut salted);
        let salted_key = hmac::Key::new(hmac_alg, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(digest_alg, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(
            &hmac::Key::new(hmac_alg, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        self.server_signature = Some(
            hmac::sign(
                &hmac::Key::new(hmac_alg, server_key.as_ref()),
                auth_message.as_bytes(),
            )
            .as_ref()
            .to_vec(),
        );
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the broker proves it knows the password too.
    pub(crate) fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the broker refused: {e}"));
        }
        let v = text
            .split(',')
            .find_map(|kv| kv.strip_prefix("v="))
            .ok_or("server-final without a signature")?;
        let v = B64
            .decode(v)
            .map_err(|_| "the server signature is not base64")?;
        match &self.server_signature {
            Some(expected) if *expected == v => Ok(()),
            _ => Err(
                "the broker's signature does not match: not the broker the password is for".into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example of RFC 7677, section 3.
    #[test]
    fn scram_sha_256_matches_the_rfc_example() {
        let mut s = Scram::with_nonce(
            Mechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = s.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(s.verify(b"v=AAAA").is_err());
    }

    #[test]
    fn iteration_counts_outside_kafkas_range_are_refused_before_any_work() {
        let first = |i: &str| format!("r=nonceXYZ,s=c2FsdA==,i={i}");
        for (count, ok) in [
            ("4095", false),
            ("4096", true),
            ("16384", true),
            ("16385", false),
            ("4294967295", false),
            ("0", false),
        ] {
            let mut s = Scram::with_nonce(Mechanism::ScramSha256, "u", "p", "nonce");
            let got = s.client_final(first(count).as_bytes());
            assert_eq!(got.is_ok(), ok, "i={count}: {got:?}");
        }
    }

    #[test]
    fn user_names_are_escaped_and_plain_is_nul_separated() {
        let s = Scram::with_nonce(Mechanism::ScramSha512, "a=b,c", "p", "n");
        assert_eq!(s.client_first(), b"n,,n=a=3Db=2Cc,r=n");
        assert_eq!(plain("u", "p"), b"\0u\0p");
        assert_eq!(
            Mechanism::parse("scram-sha-512"),
            Some(Mechanism::ScramSha512)
        );
    }
}
