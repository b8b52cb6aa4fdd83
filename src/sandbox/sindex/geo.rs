//! Just enough geometry for geo2dsphere queries: points within a region
//! (polygon or `AeroCircle`), and regions containing a point.
//!
//! Distances are great-circle (haversine on a sphere of the earth's mean
//! radius); polygon containment is tested in longitude/latitude, which is
//! close enough for the small regions UDF tests use.

use serde_json::Value as Json;

const EARTH_RADIUS_M: f64 = 6_371_000.0;

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Point(f64, f64),
    /// Outer ring, then holes.
    Polygon(Vec<Vec<(f64, f64)>>),
    MultiPolygon(Vec<Vec<Vec<(f64, f64)>>>),
    /// Centre and radius in metres.
    Circle(f64, f64, f64),
}

fn pair(j: &Json) -> Option<(f64, f64)> {
    let a = j.as_array()?;
    match a.as_slice() {
        [x, y, ..] => Some((x.as_f64()?, y.as_f64()?)),
        _ => None,
    }
}

fn ring(j: &Json) -> Option<Vec<(f64, f64)>> {
    j.as_array()?.iter().map(pair).collect()
}

fn rings(j: &Json) -> Option<Vec<Vec<(f64, f64)>>> {
    j.as_array()?.iter().map(ring).collect()
}

impl Shape {
    pub fn parse(text: &str) -> Result<Shape, String> {
        let doc: Json = serde_json::from_str(text).map_err(|e| format!("bad GeoJSON: {e}"))?;
        let coords = doc.get("coordinates");
        let kind = doc.get("type").and_then(Json::as_str).unwrap_or("");
        let shape = match (kind, coords) {
            ("Point", Some(c)) => pair(c).map(|(x, y)| Shape::Point(x, y)),
            ("Polygon", Some(c)) => rings(c).map(Shape::Polygon),
            ("MultiPolygon", Some(c)) => c
                .as_array()
                .and_then(|ps| ps.iter().map(rings).collect::<Option<Vec<_>>>())
                .map(Shape::MultiPolygon),
            ("AeroCircle", Some(c)) => c.as_array().and_then(|a| match a.as_slice() {
                [centre, radius] => {
                    let (x, y) = pair(centre)?;
                    Some(Shape::Circle(x, y, radius.as_f64()?))
                }
                _ => None,
            }),
            _ => None,
        };
        shape.ok_or_else(|| format!("unsupported GeoJSON: {kind}"))
    }

    /// Whether this region holds the point.
    fn contains(&self, x: f64, y: f64) -> bool {
        match self {
            Shape::Point(..) => false,
            Shape::Circle(cx, cy, r) => distance_m((*cx, *cy), (x, y)) <= *r,
            Shape::Polygon(rings) => polygon_contains(rings, x, y),
            Shape::MultiPolygon(polys) => polys.iter().any(|p| polygon_contains(p, x, y)),
        }
    }
}

/// Whether an indexed shape answers a query shape: a point inside a query
/// region, or a region holding a query point.
pub fn relates(indexed: &Shape, query: &Shape) -> bool {
    match (indexed, query) {
        (Shape::Point(x, y), region) => region.contains(*x, *y),
        (region, Shape::Point(x, y)) => region.contains(*x, *y),
        _ => false,
    }
}

fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lng1, lat1) = (a.0.to_radians(), a.1.to_radians());
    let (lng2, lat2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lng2 - lng1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn ring_contains(ring: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = ring.len();
    for i in 0..n {
        let (xi, yi) = ring[i];
        let (xj, yj) = ring[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

fn polygon_contains(rings: &[Vec<(f64, f64)>], x: f64, y: f64) -> bool {
    match rings.split_first() {
        Some((outer, holes)) => {
            ring_contains(outer, x, y) && !holes.iter().any(|h| ring_contains(h, x, y))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_within_regions() {
        let square = Shape::parse(
            r#"{"type": "Polygon", "coordinates": [[[0,0],[0,2],[2,2],[2,0],[0,0]]]}"#,
        )
        .unwrap();
        let inside = Shape::parse(r#"{"type": "Point", "coordinates": [1.0, 1.0]}"#).unwrap();
        let outside = Shape::parse(r#"{"type": "Point", "coordinates": [3.0, 1.0]}"#).unwrap();
        assert!(relates(&inside, &square));
        assert!(!relates(&outside, &square));
        assert!(relates(&square, &inside));
        // One degree of latitude is about 111 km.
        let circle =
            Shape::parse(r#"{"type": "AeroCircle", "coordinates": [[0.0, 0.0], 112000]}"#).unwrap();
        let north = Shape::Point(0.0, 1.0);
        assert!(relates(&north, &circle));
        let small =
            Shape::parse(r#"{"type": "AeroCircle", "coordinates": [[0.0, 0.0], 110000]}"#).unwrap();
        assert!(!relates(&north, &small));
        assert!(Shape::parse("{").is_err());
        assert!(Shape::parse(r#"{"type": "Line"}"#).is_err());
    }
}
