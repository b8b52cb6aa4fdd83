pub fn print(_v: &aerospike::Value) -> String {
    todo!()
}
pub fn to_plain_json(_v: &aerospike::Value) -> serde_json::Value {
    todo!()
}
pub fn to_typed_json(_v: &aerospike::Value) -> serde_json::Value {
    todo!()
}
