//! The world's entities (people and cities, generated from a seed) and its closed vocabulary.

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lang::{Language, TermClass, TermRef};
use crate::lexicon::{self, Word};

/// A person of the world. All attributes are facts the gold judge knows exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Index in [`World::people`].
    pub id: usize,
    /// Chinese name (surname + given name, two characters).
    pub zh: String,
    /// English name (two syllables).
    pub en: String,
    /// Age in years (18–79).
    pub age: u32,
    /// Index into [`World::cities`].
    pub city: usize,
    /// Favourite colour (index into the colour list).
    pub colour: usize,
    /// Pet (index into the animal list).
    pub pet: usize,
    /// Job (index into the job list).
    pub job: usize,
}

/// A city of the world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct City {
    /// Index in [`World::cities`].
    pub id: usize,
    /// Chinese name (three characters ending in 城).
    pub zh: String,
    /// English name.
    pub en: String,
    /// Region of the country (index into the region list: north, south, east, west).
    pub region: usize,
    /// The fruit the city is famous for (index into the fruit list).
    pub fruit: usize,
}

/// The world: people and cities generated from a seed, plus the fixed word lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// The seed the entities were generated from.
    pub seed: u64,
    /// People.
    pub people: Vec<Person>,
    /// Cities.
    pub cities: Vec<City>,
}

/// Largest number of cities the name lists allow.
pub const MAX_CITIES: usize = 12;
/// Largest number of people the name lists allow.
pub const MAX_PEOPLE: usize = 200;

fn fixed(class: TermClass) -> Option<&'static [Word]> {
    Some(match class {
        TermClass::Colour => &lexicon::COLOURS,
        TermClass::Animal => &lexicon::ANIMALS,
        TermClass::Fruit => &lexicon::FRUITS,
        TermClass::Job => &lexicon::JOBS,
        TermClass::Region => &lexicon::REGIONS,
        TermClass::Object => &lexicon::OBJECTS,
        TermClass::Antonym => &lexicon::ANTONYM_WORDS,
        TermClass::Person | TermClass::City => return None,
    })
}

impl World {
    /// Generates `people` people and `cities` cities from `seed`.
    ///
    /// Every city gets at least `people / cities` inhabitants (people are dealt to cities in
    /// turn), so two people sharing a city always exist when `people >= 2 * cities`.
    ///
    /// # Errors
    /// [`Error::Config`] if the counts are zero or above [`MAX_PEOPLE`] / [`MAX_CITIES`], or if
    /// `people < 2 * cities`.
    pub fn generate(seed: u64, people: usize, cities: usize) -> Result<World> {
        if cities == 0 || cities > MAX_CITIES {
            return Err(Error::Config(format!(
                "cities must be in 1..={MAX_CITIES}, got {cities}"
            )));
        }
        if people > MAX_PEOPLE || people < 2 * cities {
            return Err(Error::Config(format!(
                "people must be in {}..={MAX_PEOPLE} (two per city at least), got {people}",
                2 * cities
            )));
        }
        let mut rng = crate::rng(seed, crate::Stream::World);

        // City names: distinct first parts, second parts drawn with repetition.
        let mut zh_first = lexicon::ZH_CITY_FIRST.to_vec();
        zh_first.shuffle(&mut rng);
        let mut en_first = lexicon::EN_CITY_FIRST.to_vec();
        en_first.shuffle(&mut rng);
        let city_list: Vec<City> = (0..cities)
            .map(|id| City {
                id,
                zh: format!(
                    "{}{}城",
                    zh_first[id],
                    lexicon::ZH_CITY_SECOND.choose(&mut rng).expect("non-empty")
                ),
                en: format!(
                    "{}{}",
                    en_first[id],
                    lexicon::EN_CITY_SECOND.choose(&mut rng).expect("non-empty")
                ),
                region: rng.random_range(0..lexicon::REGIONS.len()),
                fruit: rng.random_range(0..lexicon::FRUITS.len()),
            })
            .collect();

        // Person names: all (surname, given) and (onset+vowel, second) pairs, shuffled.
        let mut zh_names: Vec<String> = lexicon::ZH_SURNAMES
            .iter()
            .flat_map(|s| lexicon::ZH_GIVEN.iter().map(move |g| format!("{s}{g}")))
            .collect();
        zh_names.shuffle(&mut rng);
        let mut en_names: Vec<String> = lexicon::EN_ONSETS
            .iter()
            .flat_map(|o| {
                lexicon::EN_VOWELS
                    .iter()
                    .flat_map(move |v| lexicon::EN_SECOND.iter().map(move |s| format!("{o}{v}{s}")))
            })
            .collect();
        en_names.shuffle(&mut rng);
        let mut city_of: Vec<usize> = (0..people).map(|i| i % cities).collect();
        city_of.shuffle(&mut rng);
        let people_list: Vec<Person> = (0..people)
            .map(|id| Person {
                id,
                zh: zh_names[id].clone(),
                en: en_names[id].clone(),
                age: rng.random_range(18..80),
                city: city_of[id],
                colour: rng.random_range(0..lexicon::COLOURS.len()),
                pet: rng.random_range(0..lexicon::ANIMALS.len()),
                job: rng.random_range(0..lexicon::JOBS.len()),
            })
            .collect();
        Ok(World {
            seed,
            people: people_list,
            cities: city_list,
        })
    }

    /// Number of terms in `class`.
    pub fn class_size(&self, class: TermClass) -> usize {
        match class {
            TermClass::Person => self.people.len(),
            TermClass::City => self.cities.len(),
            c => fixed(c).map_or(0, <[Word]>::len),
        }
    }

    /// The main surface of a term in a language (English: singular).
    ///
    /// # Panics
    /// If the term's id is out of range for its class.
    pub fn name(&self, t: TermRef, lang: Language) -> &str {
        let i = usize::from(t.id);
        match (t.class, lang) {
            (TermClass::Person, Language::Zh) => &self.people[i].zh,
            (TermClass::Person, Language::En) => &self.people[i].en,
            (TermClass::City, Language::Zh) => &self.cities[i].zh,
            (TermClass::City, Language::En) => &self.cities[i].en,
            (c, Language::Zh) => fixed(c).expect("fixed class")[i].zh,
            (c, Language::En) => fixed(c).expect("fixed class")[i].en,
        }
    }

    /// The plural surface (English; Chinese has no plural form and gives [`World::name`]).
    pub fn plural(&self, t: TermRef, lang: Language) -> &str {
        match (fixed(t.class), lang) {
            (Some(words), Language::En) => words[usize::from(t.id)].en_pl,
            _ => self.name(t, lang),
        }
    }

    /// Every surface of every term: `(term, language, surface)`. English surfaces are the
    /// singular and, when different, the plural.
    pub fn surfaces(&self) -> Vec<(TermRef, Language, String)> {
        let mut out = Vec::new();
        for class in TermClass::ALL {
            for id in 0..self.class_size(class) {
                let t = TermRef::new(class, id);
                out.push((t, Language::Zh, self.name(t, Language::Zh).to_owned()));
                let en = self.name(t, Language::En);
                out.push((t, Language::En, en.to_owned()));
                let pl = self.plural(t, Language::En);
                if pl != en {
                    out.push((t, Language::En, pl.to_owned()));
                }
            }
        }
        out
    }

    /// The person with `id`.
    ///
    /// # Panics
    /// If `id` is out of range.
    pub fn person(&self, id: usize) -> &Person {
        &self.people[id]
    }

    /// The city with `id`.
    ///
    /// # Panics
    /// If `id` is out of range.
    pub fn city(&self, id: usize) -> &City {
        &self.cities[id]
    }

    /// A uniformly drawn term of `class` other than `not`.
    pub(crate) fn other_term(&self, class: TermClass, not: usize, rng: &mut ChaCha8Rng) -> usize {
        let n = self.class_size(class);
        debug_assert!(n >= 2);
        let k = rng.random_range(0..n - 1);
        if k >= not { k + 1 } else { k }
    }
}
