//! Benchmarks live under `benches/benches/`; this crate carries their dependencies and the
//! WAT main module the loader benchmarks share.

/// The loader tests' allocator (`loader/tests/common/mod.rs`): a 16-byte header per block,
/// `free` pushes onto a list, `malloc` takes the smallest free block that fits, else bumps.
pub const ALLOCATOR: &str = r#"
  (global $heap (mut i32) (i32.const 65536))
  (global $free_list (mut i32) (i32.const 0))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local $prev i32) (local $best i32) (local $best_prev i32) (local $next i32)
    local.get $n i32.const 15 i32.add i32.const -16 i32.and local.set $n
    global.get $free_list local.set $p
    block $done
      loop $l
        local.get $p i32.eqz br_if $done
        local.get $p i32.const 16 i32.sub i32.load local.get $n i32.ge_u
        if
          local.get $best
          if (result i32)
            local.get $p i32.const 16 i32.sub i32.load local.get $best i32.const 16 i32.sub i32.load i32.lt_u
          else
            i32.const 1
          end
          if local.get $p local.set $best local.get $prev local.set $best_prev end
        end
        local.get $p local.set $prev
        local.get $p i32.const 12 i32.sub i32.load local.set $p
        br $l
      end
    end
    local.get $best
    if
      local.get $best i32.const 12 i32.sub i32.load local.set $next
      local.get $best_prev i32.eqz
      if local.get $next global.set $free_list
      else local.get $best_prev i32.const 12 i32.sub local.get $next i32.store end
      local.get $best return
    end
    global.get $heap i32.const 16 i32.add local.set $p
    local.get $p local.get $n i32.add global.set $heap
    block $ok
      loop $g
        global.get $heap memory.size i32.const 65536 i32.mul i32.le_u br_if $ok
        i32.const 1 memory.grow i32.const -1 i32.eq if i32.const 0 return end
        br $g
      end
    end
    local.get $p i32.const 16 i32.sub local.get $n i32.store
    local.get $p)
  (func $free (export "free") (param $p i32)
    local.get $p i32.eqz if return end
    local.get $p i32.const 12 i32.sub global.get $free_list i32.store
    local.get $p global.set $free_list)
"#;

/// What the loader needs of a main module, plus a data symbol.
pub const MAIN: &str = r#"
  (memory (export "memory") 2)
  (table (export "__indirect_function_table") 64 funcref)
  (global (export "__stack_pointer") (mut i32) (i32.const 60000))
  (global (export "main_data") i32 (i32.const 1024))
"#;
