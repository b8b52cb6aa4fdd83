//! Sample modules for demos and learning, each with the call that runs it
//! and the data (and index) it needs: `asudf sample load NAME` and the
//! console's samples list take an empty sandbox to a working call at once.

use aerospike::Value;

use crate::cli::NsSet;
use crate::client::{IndexSpec, RecordKey, Request};

/// How a sample is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// A record UDF applied to one key.
    Record,
    /// A stream UDF run as an aggregation.
    Aggregate,
    /// A record UDF the server runs over a set as a background job.
    Background,
}

impl SampleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleKind::Record => "record",
            SampleKind::Aggregate => "aggregate",
            SampleKind::Background => "background",
        }
    }
}

/// A secondary index a sample's `where` clause needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleIndex {
    pub bin: &'static str,
    /// `numeric` or `string`.
    pub kind: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub name: &'static str,
    pub description: &'static str,
    /// The module's file name.
    pub module: &'static str,
    pub source: &'static str,
    pub kind: SampleKind,
    /// `NS.SET` the call reads or writes.
    pub target: &'static str,
    /// The record key of a record UDF sample.
    pub key: Option<&'static str>,
    pub function: &'static str,
    /// Arguments in the literal syntax.
    pub args: &'static [&'static str],
    /// A `where` clause to try (needs `index`).
    pub where_clause: Option<&'static str>,
    /// How many sales records to write first (0 = none).
    pub records: u32,
    pub index: Option<SampleIndex>,
}

const SALES: &str = "test.sales";
const SALES_INDEX: SampleIndex = SampleIndex {
    bin: "amount",
    kind: "numeric",
};
/// Records the sales samples write.
const SALES_RECORDS: u32 = 1000;
/// Sample records a loader keeps in flight at once.
pub const WRITES_IN_FLIGHT: u32 = 16;

pub const SAMPLES: &[Sample] = &[
    Sample {
        name: "counter",
        description: "record UDF: add to a bin, creating the record on first call",
        module: "counter.lua",
        source: include_str!("../assets/counter.lua"),
        kind: SampleKind::Record,
        target: "test.demo",
        key: Some("counter1"),
        function: "increment",
        args: &["count", "5"],
        where_clause: None,
        records: 0,
        index: None,
    },
    Sample {
        name: "sum",
        description: "stream UDF: the total amount of the selected sales",
        module: "sum.lua",
        source: include_str!("../assets/samples/sum.lua"),
        kind: SampleKind::Aggregate,
        target: SALES,
        key: None,
        function: "total",
        args: &[],
        where_clause: Some("amount BETWEEN 10 AND 50"),
        records: SALES_RECORDS,
        index: Some(SALES_INDEX),
    },
    Sample {
        name: "groupby",
        description: "stream UDF: sales count and total per region (aggregate + reduce with map.merge)",
        module: "groupby.lua",
        source: include_str!("../assets/samples/groupby.lua"),
        kind: SampleKind::Aggregate,
        target: SALES,
        key: None,
        function: "by_region",
        args: &[],
        where_clause: None,
        records: SALES_RECORDS,
        index: Some(SALES_INDEX),
    },
    Sample {
        name: "stamp",
        description: "background UDF: the server stamps every sale with a label",
        module: "stamp.lua",
        source: include_str!("../assets/samples/stamp.lua"),
        kind: SampleKind::Background,
        target: SALES,
        key: None,
        function: "mark",
        args: &["checked"],
        where_clause: None,
        records: SALES_RECORDS,
        index: Some(SALES_INDEX),
    },
    Sample {
        name: "ratelimit",
        description: "record UDF: a fixed-window rate limiter (true while under the limit)",
        module: "ratelimit.lua",
        source: include_str!("../assets/samples/ratelimit.lua"),
        kind: SampleKind::Record,
        target: "test.limits",
        key: Some("user1"),
        function: "allow",
        args: &["3", "60"],
        where_clause: None,
        records: 0,
        index: None,
    },
];

pub fn find(name: &str) -> Option<&'static Sample> {
    let name = name.strip_suffix(".lua").unwrap_or(name);
    SAMPLES.iter().find(|s| s.name == name)
}

const REGIONS: [&str; 4] = ["north", "south", "east", "west"];

/// The `i`th sales record: key `i`, an amount spread over 0..100, a region.
pub fn sales_record(i: u32) -> (Value, Vec<(String, Value)>) {
    let amount = (i64::from(i) * 37) % 100;
    (
        Value::Int(i64::from(i)),
        vec![
            ("amount".to_string(), Value::Int(amount)),
            (
                "region".to_string(),
                Value::from(REGIONS[i as usize % REGIONS.len()]),
            ),
        ],
    )
}

impl Sample {
    /// The module name as calls spell it (no `.lua`).
    pub fn module_name(&self) -> &'static str {
        self.module.trim_end_matches(".lua")
    }

    /// Where the sample's call and records go.
    pub fn target(&self) -> Result<NsSet, String> {
        NsSet::parse(self.target)
    }

    /// Loading, step 1: register the module.
    pub fn put_module(&self) -> Request {
        Request::PutModule {
            name: self.module.to_string(),
            source: self.source.to_string(),
        }
    }

    /// Loading, step 2: the `i`th record write (`i < records`).
    pub fn write(&self, i: u32) -> Result<Request, String> {
        let target = self.target()?;
        let (key, bins) = sales_record(i);
        Ok(Request::PutRecord {
            key: RecordKey {
                ns: target.namespace,
                set: target.set,
                key,
            },
            bins,
            send_key: false,
        })
    }

    /// Loading, step 3: the index its `where` clause needs, if any.
    pub fn index_spec(&self) -> Result<Option<IndexSpec>, String> {
        let Some(index) = self.index else {
            return Ok(None);
        };
        let target = self.target()?;
        let spec = IndexSpec::new(
            target.namespace,
            target.set,
            index.bin,
            index.kind,
            None,
            None,
        );
        Ok(Some(spec))
    }

    /// The command line that runs the sample.
    pub fn command(&self) -> String {
        let call = format!("{}.{}", self.module_name(), self.function);
        let args = self.args.join(" ");
        let mut line = match self.kind {
            SampleKind::Record => format!(
                "asudf apply {} {} {call} {args}",
                self.target,
                self.key.unwrap_or("k")
            ),
            SampleKind::Aggregate => format!("asudf aggregate {} {call} {args}", self.target),
            SampleKind::Background => format!("asudf execute {} {call} {args}", self.target),
        };
        line = line.trim_end().to_string();
        if let Some(clause) = self.where_clause {
            line.push_str(&format!(" --where \"{clause}\""));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_found_by_name_and_names_its_module() {
        for sample in SAMPLES {
            assert_eq!(find(sample.name).map(|s| s.module), Some(sample.module));
            assert!(
                sample
                    .source
                    .contains(&format!("function {}(", sample.function))
            );
            for arg in sample.args {
                crate::value::parse_arg(arg).unwrap();
            }
            if let Some(clause) = sample.where_clause {
                let w = crate::where_clause::parse(clause).unwrap();
                assert_eq!(Some(w.bin.as_str()), sample.index.map(|i| i.bin));
            }
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn sales_records_spread_amounts_and_regions() {
        let amounts: std::collections::BTreeSet<i64> = (0..SALES_RECORDS)
            .map(|i| match sales_record(i).1[0].1 {
                Value::Int(a) => a,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(amounts.len(), 100);
        assert_eq!(
            sales_record(5).1[1].1,
            Value::from("south"),
            "regions rotate"
        );
    }

    #[test]
    fn load_steps_register_write_and_index() {
        let sum = find("sum").unwrap();
        assert!(matches!(sum.put_module(), Request::PutModule { name, .. } if name == "sum.lua"));
        let Request::PutRecord { key, bins, .. } = sum.write(7).unwrap() else {
            panic!("a write")
        };
        assert_eq!(
            (key.ns.as_str(), key.set.as_deref()),
            ("test", Some("sales"))
        );
        assert_eq!(key.key, Value::Int(7));
        assert_eq!(bins, sales_record(7).1);
        let spec = sum.index_spec().unwrap().unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.bin.as_str()),
            ("test_sales_amount", "amount")
        );
        assert_eq!(find("counter").unwrap().index_spec(), Ok(None));
    }

    #[test]
    fn commands_spell_the_call() {
        assert_eq!(
            find("sum").unwrap().command(),
            "asudf aggregate test.sales sum.total --where \"amount BETWEEN 10 AND 50\""
        );
        assert_eq!(
            find("counter").unwrap().command(),
            "asudf apply test.demo counter1 counter.increment count 5"
        );
    }
}
