//! New inputs from old ones, without coverage feedback: the checked-in corpus entries
//! changed by a few stacked mutations (bit flips, interesting integers where a parser
//! reads lengths and counts, cuts, repeats, splices with another entry, dictionary
//! tokens), plus wholly random inputs.

/// A small deterministic generator (xorshift64*): a run is reproduced from its seed.
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new(seed: u64) -> Self {
        Random(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound`; `bound` must not be zero.
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values at which length and count checks go wrong: zero, one, sign boundaries, the
/// largest values, and sizes that could make a reader reserve gigabytes.
const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    4,
    5,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    u64::MAX,
];

pub(super) struct Mutator<'a> {
    random: Random,
    corpus: &'a [Vec<u8>],
    dictionary: &'a [&'a [u8]],
    max_length: usize,
}

impl<'a> Mutator<'a> {
    pub(super) fn new(
        seed: u64,
        corpus: &'a [Vec<u8>],
        dictionary: &'a [&'a [u8]],
        max_length: usize,
    ) -> Self {
        Mutator {
            random: Random::new(seed),
            corpus,
            dictionary,
            max_length,
        }
    }

    /// The next input: usually a mutated corpus entry, sometimes random bytes or a run of
    /// dictionary tokens (which find what no valid entry is near).
    pub(super) fn next_input(&mut self) -> Vec<u8> {
        let mut input = match self.random.below(16) {
            0 => self.random_bytes(),
            1 if !self.dictionary.is_empty() => self.random_tokens(),
            _ if !self.corpus.is_empty() => {
                let mut input = self.corpus[self.random.below(self.corpus.len())].clone();
                for _ in 0..=self.random.below(4) {
                    self.mutate(&mut input);
                }
                input
            }
            _ => self.random_bytes(),
        };
        input.truncate(self.max_length);
        input
    }

    fn random_bytes(&mut self) -> Vec<u8> {
        let length = self.random.below(256);
        (0..length).map(|_| self.random.next() as u8).collect()
    }

    fn random_tokens(&mut self) -> Vec<u8> {
        let mut input = Vec::new();
        for _ in 0..=self.random.below(32) {
            input.extend_from_slice(self.dictionary[self.random.below(self.dictionary.len())]);
        }
        input
    }

    fn mutate(&mut self, input: &mut Vec<u8>) {
        if input.is_empty() {
            input.extend(self.random_bytes());
            return;
        }
        let position = self.random.below(input.len() + 1);
        match self.random.below(10) {
            0 => {
                let index = position.min(input.len() - 1);
                input[index] ^= 1 << self.random.below(8);
            }
            1 => {
                let index = position.min(input.len() - 1);
                input[index] = self.random.next() as u8;
            }
            2 => self.write_integer(input, position),
            3 => input.truncate(position),
            4 => {
                let end = (position + 1 + self.random.below(16)).min(input.len());
                input.drain(position.min(end)..end);
            }
            5 => {
                let bytes: Vec<u8> = (0..=self.random.below(8))
                    .map(|_| self.random.next() as u8)
                    .collect();
                input.splice(position..position, bytes);
            }
            6 => {
                // A repeated stretch: a field, a column or a whole message twice.
                let start = self.random.below(input.len());
                let end = (start + 1 + self.random.below(64)).min(input.len());
                let stretch = input[start..end].to_vec();
                for _ in 0..=self.random.below(4) {
                    input.splice(position..position, stretch.iter().copied());
                }
            }
            7 if !self.corpus.is_empty() => {
                let other = &self.corpus[self.random.below(self.corpus.len())];
                let from = self.random.below(other.len() + 1);
                input.truncate(position);
                input.extend_from_slice(&other[from..]);
            }
            8 if !self.dictionary.is_empty() => {
                let token = self.dictionary[self.random.below(self.dictionary.len())];
                input.splice(position..position, token.iter().copied());
            }
            9 => {
                // One token or byte many times over: deep nesting (`{{{{…`, `((((…`) is
                // where recursive parsers run out of stack.
                let token = match self.dictionary {
                    [] => vec![self.random.next() as u8],
                    tokens => tokens[self.random.below(tokens.len())].to_vec(),
                };
                let times = 1 << self.random.below(15);
                let run = token.repeat(times.min(self.max_length / token.len().max(1)));
                input.splice(position..position, run);
            }
            _ => input.insert(position, self.random.next() as u8),
        }
    }

    /// Overwrites (or inserts) a 1, 2, 4 or 8 byte integer, usually big-endian as the
    /// PostgreSQL protocol writes them, sometimes in decimal for the text formats.
    fn write_integer(&mut self, input: &mut Vec<u8>, position: usize) {
        let mut value = INTERESTING[self.random.below(INTERESTING.len())];
        if self.random.chance(4) {
            // Off by one around the length actually left, the classic miscount.
            value = (input.len() - position.min(input.len())) as u64;
            value = value
                .wrapping_add(self.random.below(3) as u64)
                .wrapping_sub(1);
        }
        let bytes: Vec<u8> = match self.random.below(5) {
            0 => vec![value as u8],
            1 => (value as u16).to_be_bytes().to_vec(),
            2 => (value as u32).to_be_bytes().to_vec(),
            3 => value.to_be_bytes().to_vec(),
            _ => value.to_string().into_bytes(),
        };
        let end = (position + bytes.len()).min(input.len());
        if self.random.chance(2) {
            input.splice(position..end, bytes);
        } else {
            input.splice(position..position, bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_stay_within_the_length_limit_and_vary() {
        let corpus = vec![b"postgres://user@host/db".to_vec(), vec![0; 300]];
        let dictionary: [&[u8]; 2] = [b"%", b"@@@@@@@@@@"];
        let mut mutator = Mutator::new(7, &corpus, &dictionary, 200);
        let inputs: Vec<Vec<u8>> = (0..2_000).map(|_| mutator.next_input()).collect();
        assert!(inputs.iter().all(|input| input.len() <= 200));
        let distinct: std::collections::HashSet<&Vec<u8>> = inputs.iter().collect();
        assert!(distinct.len() > 1_000, "only {} distinct", distinct.len());
        assert!(
            inputs
                .iter()
                .any(|input| input.windows(4).any(|w| w == [0x7F, 0xFF, 0xFF, 0xFF]))
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let corpus = vec![b"key=value".to_vec()];
        let first: Vec<_> = {
            let mut mutator = Mutator::new(42, &corpus, &[], 64);
            (0..100).map(|_| mutator.next_input()).collect()
        };
        let mut mutator = Mutator::new(42, &corpus, &[], 64);
        let second: Vec<_> = (0..100).map(|_| mutator.next_input()).collect();
        assert_eq!(first, second);
    }
}
