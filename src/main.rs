use kube::CustomResourceExt;
fn main() {
    print!("{}", serde_saphyr::to_string(&appstack_operator::crd::AppStack::crd()).unwrap());
}
