//! National identifiers beyond the US SSN: the check each one's issuer built into it, so that
//! a redaction rule takes only numbers that could have been issued, not every digit run of the
//! right length (an order number, a timestamp, a phone number).
//!
//! Each check takes the text a detector's pattern matched (separators included: spaces,
//! dashes, dots) and says whether it is a well-formed identifier. Where the identifier has a
//! check digit or letter the check computes it; where it has none (the UK's National Insurance
//! number) the allocation rules are checked instead. The patterns live beside the other
//! built-in detectors in `redact.rs`, so that every pattern is in the one `RegexSet`.
//!
//! Sources: HMRC's NIM39110 (NINO prefixes); the German Abgabenordnung §139b and BZSt's
//! ISO 7064 MOD 11,10 check digit; INSEE's NIR key (97 − number mod 97, Corsica's 2A/2B as 19/18);
//! the Spanish Real Decreto 1553/2005 (DNI letter, mod 23; NIE's X/Y/Z as 0/1/2); the Italian
//! DM 12/03/1974 (codice fiscale control character); the Dutch BSN "elfproef"; UIDAI's Verhoeff
//! check digit for Aadhaar; the Canadian SIN's Luhn digit; the Polish PESEL weights 1-3-7-9;
//! the Brazilian CPF's two mod-11 digits.

/// A national identifier with a detector of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NationalId {
    /// UK National Insurance number: two letters, six digits, a letter A–D; no check digit.
    UkNino,
    /// German tax identification number (Steuer-ID): 11 digits, ISO 7064 MOD 11,10.
    DeSteuerId,
    /// French social security number (NIR): 13 characters and a two-digit key.
    FrNir,
    /// Spanish DNI (8 digits) or NIE (X/Y/Z and 7 digits) and the control letter.
    EsDni,
    /// Italian codice fiscale: 16 characters, the last a control letter.
    ItCodiceFiscale,
    /// Dutch citizen service number (BSN): 9 digits, the 11-test.
    NlBsn,
    /// Indian Aadhaar number: 12 digits, the last a Verhoeff check digit.
    InAadhaar,
    /// Canadian Social Insurance Number: 9 digits, Luhn; none starts with 8.
    CaSin,
    /// Polish PESEL: 11 digits, weighted check digit.
    PlPesel,
    /// Brazilian CPF: 11 digits, the last two mod-11 check digits.
    BrCpf,
}

impl NationalId {
    /// Whether `text` (as its pattern matched it) is a well-formed identifier.
    pub(crate) fn check(self, text: &str) -> bool {
        let compact: Vec<u8> = text
            .bytes()
            .filter(|b| !matches!(b, b' ' | b'-' | b'.'))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        match self {
            NationalId::UkNino => uk_nino(&compact),
            NationalId::DeSteuerId => digits(&compact, 11).is_some_and(|d| de_steuer_id(&d)),
            NationalId::FrNir => fr_nir(&compact),
            NationalId::EsDni => es_dni(&compact),
            NationalId::ItCodiceFiscale => it_codice_fiscale(&compact),
            NationalId::NlBsn => digits(&compact, 9).is_some_and(|d| nl_bsn(&d)),
            NationalId::InAadhaar => digits(&compact, 12).is_some_and(|d| verhoeff(&d)),
            NationalId::CaSin => digits(&compact, 9).is_some_and(|d| d[0] != 8 && luhn(&d)),
            NationalId::PlPesel => digits(&compact, 11).is_some_and(|d| pl_pesel(&d)),
            NationalId::BrCpf => digits(&compact, 11).is_some_and(|d| br_cpf(&d)),
        }
    }
}

/// The digits of `text` when it is exactly `len` ASCII digits.
fn digits(text: &[u8], len: usize) -> Option<Vec<u32>> {
    (text.len() == len && text.iter().all(u8::is_ascii_digit))
        .then(|| text.iter().map(|b| u32::from(b - b'0')).collect())
}

/// HMRC never allocates the prefixes BG, GB, KN, NK, NT, TN and ZZ (the letters themselves
/// are limited by the pattern: D, F, I, Q, U, V never, O not second).
fn uk_nino(text: &[u8]) -> bool {
    text.len() == 9
        && !matches!(
            &text[..2],
            b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
        )
}

/// ISO 7064 MOD 11,10 over the first ten digits, and the allocation rule: in those ten, one
/// digit occurs twice or three times and every other at most once (so 8 or 9 distinct digits);
/// the first is not 0.
fn de_steuer_id(d: &[u32]) -> bool {
    if d[0] == 0 {
        return false;
    }
    let mut counts = [0u8; 10];
    for &x in &d[..10] {
        counts[x as usize] += 1;
    }
    let repeated: Vec<u8> = counts.iter().copied().filter(|&c| c > 1).collect();
    if repeated.len() != 1 || repeated[0] > 3 {
        return false;
    }
    let mut product = 10;
    for &x in &d[..10] {
        let mut sum = (x + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == d[10]
}

/// The NIR's key: 97 − (the 13-character number mod 97), Corsica's departments 2A and 2B read
/// as 19 and 18. The first character is the sex (1, 2; 3, 4, 7, 8 for temporary numbers).
fn fr_nir(text: &[u8]) -> bool {
    if text.len() != 15 || !matches!(text[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
        return false;
    }
    let number: Vec<u8> = match &text[5..7] {
        b"2A" => [&text[..5], b"19", &text[7..13]].concat(),
        b"2B" => [&text[..5], b"18", &text[7..13]].concat(),
        _ => text[..13].to_vec(),
    };
    let Some(number) = number.iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    }) else {
        return false;
    };
    let key = text[13..].iter().try_fold(0u64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    });
    key == Some(97 - number % 97)
}

/// The DNI/NIE control letter: the number mod 23 indexes `TRWAGMYFPDXBNJZSQVHLCKE`; an NIE's
/// leading X, Y or Z counts as 0, 1 or 2.
fn es_dni(text: &[u8]) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    if text.len() != 9 {
        return false;
    }
    let lead = match text[0] {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        b @ b'0'..=b'9' => u64::from(b - b'0'),
        _ => return false,
    };
    let Some(rest) = text[1..8].iter().try_fold(lead, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    }) else {
        return false;
    };
    LETTERS[(rest % 23) as usize] == text[8]
}

/// The codice fiscale's control character: characters at odd positions (1st, 3rd, ...) by
/// the decree's table, at even positions by their value (digits 0–9, letters 0–25); the sum
/// mod 26 as a letter.
fn it_codice_fiscale(text: &[u8]) -> bool {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    if text.len() != 16 || !text.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let value = |b: u8| match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        _ => u32::from(b - b'A'),
    };
    let sum: u32 = text[..15]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if i % 2 == 0 {
                ODD[value(b) as usize]
            } else {
                value(b)
            }
        })
        .sum();
    text[15] == b'A' + (sum % 26) as u8
}

/// The BSN's 11-test: 9·d1 + 8·d2 + … + 2·d8 − d9 is a multiple of 11 (and not all zeros).
fn nl_bsn(d: &[u32]) -> bool {
    let weighted: i64 = d[..8]
        .iter()
        .enumerate()
        .map(|(i, &x)| (9 - i as i64) * i64::from(x))
        .sum::<i64>()
        - i64::from(d[8]);
    weighted != 0 && weighted % 11 == 0
}

/// Verhoeff's dihedral-group check (Aadhaar's last digit); an Aadhaar never starts with 0 or 1.
fn verhoeff(d: &[u32]) -> bool {
    const MULTIPLY: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const PERMUTE: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 7, 6, 8, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    if d[0] < 2 {
        return false;
    }
    let check = d.iter().rev().enumerate().fold(0u8, |c, (i, &x)| {
        MULTIPLY[c as usize][PERMUTE[i % 8][x as usize] as usize]
    });
    check == 0
}

/// The Luhn checksum (every second digit from the right doubled).
fn luhn(d: &[u32]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| match (i % 2, x * 2) {
            (0, _) => x,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// PESEL: the weights 1, 3, 7, 9 repeated over the first ten digits; the check digit makes
/// the sum a multiple of 10.
fn pl_pesel(d: &[u32]) -> bool {
    const WEIGHTS: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    let sum: u32 = d[..10].iter().zip(WEIGHTS).map(|(x, w)| x * w).sum();
    (10 - sum % 10) % 10 == d[10]
}

/// CPF: two check digits, each the weighted sum (weights from 10, then 11, down to 2) times 10
/// mod 11 (10 read as 0); numbers of one repeated digit pass the arithmetic but are not issued.
fn br_cpf(d: &[u32]) -> bool {
    if d.iter().all(|&x| x == d[0]) {
        return false;
    }
    (9..11).all(|n| {
        let sum: u32 = d[..n]
            .iter()
            .enumerate()
            .map(|(i, &x)| x * (n as u32 + 1 - i as u32))
            .sum();
        (sum * 10 % 11) % 10 == d[n]
    })
}

#[cfg(test)]
mod tests {
    use super::NationalId::{self, *};

    /// Valid samples (made with each scheme's published algorithm, or its issuer's own
    /// example), then the same with one character changed so the check fails.
    const SAMPLES: &[(NationalId, &[&str], &[&str])] = &[
        (
            UkNino,
            &["AB123456C", "AB 12 34 56 C", "ce 00 00 00 d"],
            &["GB123456C", "ZZ 12 34 56 A", "NT123456A"],
        ),
        (
            DeSteuerId,
            &["86095742719", "86 095 742 719"],
            &["86095742718", "12345678901", "06095742719"],
        ),
        (
            FrNir,
            &[
                "184037645108996",
                "1 84 03 76 451 089 96",
                "185022A12345682",
                "269029934173285",
            ],
            &["184037645108997", "585022A12345682", "185022C12345682"],
        ),
        (
            EsDni,
            &["12345678Z", "X1234567L", "y0000000z", "12345678-Z"],
            &["12345678A", "X1234567M", "W1234567L"],
        ),
        (
            ItCodiceFiscale,
            &["RSSMRA85T10A562S", "MRTMTT91D08F205J"],
            &["RSSMRA85T10A562T", "MRTMTT91D08F205K"],
        ),
        (
            NlBsn,
            &["111222333", "123456782", "1234.56.782"],
            &["123456789", "000000000", "111222334"],
        ),
        (
            InAadhaar,
            &["234123412346", "4991 1852 7618"],
            &["234123412347", "134123412346", "4991 1852 7619"],
        ),
        (
            CaSin,
            &["046 454 286", "130-692-544"],
            &["046 454 287", "846 454 286"],
        ),
        (
            PlPesel,
            &["44051401359", "02070803628"],
            &["44051401358", "02070803621"],
        ),
        (
            BrCpf,
            &["529.982.247-25", "11144477735"],
            &["529.982.247-24", "111.111.111-11", "11144477736"],
        ),
    ];

    #[test]
    fn each_identifier_accepts_valid_samples_and_refuses_a_changed_character() {
        for (id, valid, invalid) in SAMPLES {
            for text in *valid {
                assert!(id.check(text), "{id:?} should accept {text}");
            }
            for text in *invalid {
                assert!(!id.check(text), "{id:?} should refuse {text}");
            }
        }
    }

    #[test]
    fn every_single_digit_change_of_a_check_digit_scheme_is_caught() {
        // Luhn, MOD 11,10, mod 97, Verhoeff, PESEL's and the BSN's weights all catch every
        // single-digit error: change each digit of a valid sample to each other digit.
        let samples = [
            (DeSteuerId, "86095742719"),
            (FrNir, "184037645108996"),
            (NlBsn, "123456782"),
            (InAadhaar, "234123412346"),
            (CaSin, "046454286"),
            (PlPesel, "44051401359"),
            (BrCpf, "52998224725"),
        ];
        for (id, sample) in samples {
            for at in 0..sample.len() {
                for digit in b'0'..=b'9' {
                    let mut changed = sample.as_bytes().to_vec();
                    if changed[at] == digit {
                        continue;
                    }
                    changed[at] = digit;
                    let changed = String::from_utf8(changed).expect("digits");
                    assert!(!id.check(&changed), "{id:?} accepted {changed}");
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused_without_panicking() {
        for id in SAMPLES.iter().map(|(id, _, _)| *id) {
            for text in [
                "",
                "1",
                "ABCDEFGHIJKLMNOP",
                "12345678901234567890",
                "2A2B2A2B2A2B2A2",
            ] {
                assert!(!id.check(text), "{id:?} accepted {text:?}");
            }
        }
    }
}
