//! A readable Graphviz dot of a CUDA graph: the driver's verbose dump
//! (cuGraphDebugDotPrint) lists every parameter of every node; this keeps one line per
//! node (kernel name with grid and block, or copy direction and size) and the edges.

/// The compact form of a verbose dot dump, or `None` if it is not one.
pub fn compact(verbose: &str) -> Option<String> {
    let mut out = String::from("digraph step {\n  node [shape=box fontname=monospace];\n");
    for block in verbose.split("\n\n") {
        // A node's block starts at the line that declares it (the first block also
        // holds the graph's header).
        let Some(start) = node_start(block) else {
            continue;
        };
        let block = &block[start..];
        let name = node_name(block).expect("found above");
        let kind = block.split("label=\"{").nth(1)?.trim_start();
        let label = if kind.starts_with("KERNEL") {
            kernel_label(block)?
        } else if kind.starts_with("MEMCPY") {
            copy_label(block)?
        } else {
            kind.lines().next()?.to_owned()
        };
        out.push_str(&format!("  {name} [label=\"{label}\"];\n"));
    }
    for line in verbose.lines().filter(|l| l.contains("\" -> \"")) {
        let mut ends = line.split(" -> ").map(|end| node_id(end.trim()));
        let (from, to) = (ends.next()??, ends.next()??);
        out.push_str(&format!("  {from} -> {to};\n"));
    }
    out.push_str("}\n");
    Some(out)
}

/// Where the line declaring a node starts in `block`, if one does.
fn node_start(block: &str) -> Option<usize> {
    let mut offset = 0;
    for line in block.split_inclusive('\n') {
        if node_name(line).is_some() {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// `n<i>` for a block that declares node `"graph_<g>_node_<i>"`.
fn node_name(block: &str) -> Option<String> {
    let head = block.lines().next()?;
    if !head.starts_with("\"graph_") || !head.contains("_node_") || !head.contains("[style=") {
        return None;
    }
    node_id(head)
}

fn node_id(text: &str) -> Option<String> {
    let start = text.find("_node_")? + "_node_".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("n{digits}"))
}

/// `name <<<grid, block>>>` from `| name\<\<\<grid,block,smem\>\>\>}`, where grid and
/// block are a number or `\{x,y\}`.
fn kernel_label(block: &str) -> Option<String> {
    let (before, after) = block.split_once(r"\<\<\<")?;
    let name = before.rsplit(' ').next()?;
    let launch = after.split_once(r"\>\>\>")?.0.replace('\\', "");
    // Split at the commas outside braces: grid, block, shared memory.
    let (mut dims, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in launch.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                dims.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    dims.push(current);
    let dim = |d: &String| d.replace('{', "(").replace('}', ")");
    Some(format!(
        "{name} <<<{}, {}>>>",
        dim(dims.first()?),
        dim(dims.get(1)?)
    ))
}

/// `copy HtoD 32 B` from the source and destination memory types and the width.
fn copy_label(block: &str) -> Option<String> {
    let kinds: Vec<char> = block
        .match_indices(" (")
        .filter_map(|(at, _)| {
            let before = &block[..at];
            if before.ends_with("HOST") {
                Some('H')
            } else if before.ends_with("DEVICE") {
                Some('D')
            } else {
                None
            }
        })
        .collect();
    let width = block.split("{WidthInBytes | Height | Depth} | {").nth(1)?;
    let bytes: String = width.chars().take_while(char::is_ascii_digit).collect();
    Some(format!(
        "copy {}to{} {bytes} B",
        kinds.first()?,
        kinds.get(1)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes and an edge as CUDA 13's driver writes them (abridged).
    const VERBOSE: &str = r#"digraph dot {
subgraph cluster_1 {
label="graph_1" graph[style="dashed"];
"graph_1_node_0"[style="solid" shape="record" label="{
MEMCPY
| {{ID | node handle} | {0 (topoId: 13) | 0x00005589F8EE9170}}
| {{src | dst} | { MemoryType | Array | Host } | {HOST (HOST PINNED) | 0x0 | 0x7F | DEVICE (DEVICE) | 0x0 | 0x0}}
| {Extent | {WidthInBytes | Height | Depth} | {4 | 1 | 1}}
}"];

"graph_1_node_3"[style="bold" shape="record" label="{KERNEL
| {ID | 3 (topoId: 11) | embedding\<\<\<1,256,0\>\>\>}
| {{node handle | func handle} | {0x00005589F8EEA7A8 | 0x00005589F8EB5070}}
}"];

"graph_1_node_0" -> "graph_1_node_3" [headlabel=1];
}
}"#;

    #[test]
    fn keeps_one_line_per_node_and_the_edges() {
        assert_eq!(
            compact(VERBOSE).unwrap(),
            "digraph step {\n  node [shape=box fontname=monospace];\n  \
             n0 [label=\"copy HtoD 4 B\"];\n  \
             n3 [label=\"embedding <<<1, 256>>>\"];\n  \
             n0 -> n3;\n}\n"
        );
    }
}
