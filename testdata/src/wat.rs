//! The WAT text the loader's tests, the benchmarks and the fuzz seeds share: a main module
//! with the exports the loader needs and a small allocator, and the imports every side module
//! starts with. Text only (no `wat` or `wasmtime` here): each user assembles it.

/// The allocator: blocks carry a 16-byte header `[size][next]`; `free` pushes onto a list,
/// `malloc` takes the smallest free block that fits (no splitting), else bumps from 64 KiB.
/// Same-size alloc/free cycles keep `heap_top` flat, which is what the leak tests measure;
/// `live_blocks` counts blocks allocated and not freed.
pub const ALLOCATOR: &str = r#"
  (global $heap (mut i32) (i32.const 65536))
  (global $free_list (mut i32) (i32.const 0))
  (global $live (mut i32) (i32.const 0))
  (func (export "heap_top") (result i32) global.get $heap)
  (func (export "live_blocks") (result i32) global.get $live)
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32) (local $prev i32) (local $best i32) (local $best_prev i32) (local $next i32)
    local.get $n i32.const 15 i32.add i32.const -16 i32.and local.set $n
    global.get $free_list local.set $p
    ;; best fit: the smallest free block that is large enough
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
      global.get $live i32.const 1 i32.add global.set $live
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
    global.get $live i32.const 1 i32.add global.set $live
    local.get $p)
  (func $free (export "free") (param $p i32)
    local.get $p i32.eqz if return end
    local.get $p i32.const 12 i32.sub global.get $free_list i32.store
    local.get $p global.set $free_list
    global.get $live i32.const 1 i32.sub global.set $live)
"#;

// A macro, not only a const, so that `MAIN_BODY` can be one `concat!` of literals.
macro_rules! main_exports {
    () => {
        r#"  (memory (export "memory") 2)
  (global (export "__stack_pointer") (mut i32) (i32.const 60000))
  (global (export "main_data") i32 (i32.const 1024))
"#
    };
}

/// The exports the loader needs of a main module besides its table and allocator: `memory`
/// (2 pages) and `__stack_pointer` (60000), plus a data symbol `main_data` at 1024.
pub const MAIN_EXPORTS: &str = main_exports!();

/// The loader tests' main module without its table and allocator: the `pymode.*` imports, then
/// [`MAIN_EXPORTS`], then a table type, two functions at slots 1 and 2 (`main_fn` returns 42,
/// `main_fn2` 43), helpers to call through the table and peek at memory, and `g_*` wrappers
/// around the `pymode.*` imports.
pub const MAIN_BODY: &str = concat!(
    r#"
  (import "pymode" "dl_open" (func $dl_open (param i32 i32) (result i32)))
  (import "pymode" "dl_open_flags" (func $dl_open_flags (param i32 i32 i32) (result i32)))
  (import "pymode" "dl_sym" (func $dl_sym (param i32 i32 i32) (result i32)))
  (import "pymode" "dl_close" (func $dl_close (param i32)))
  (import "pymode" "dl_error" (func $dl_error (param i32 i32) (result i32)))
"#,
    main_exports!(),
    r#"  (type $v_i (func (result i32)))
  (elem (i32.const 1) $main_fn $main_fn2)
  (func $main_fn (export "main_fn") (result i32) i32.const 42)
  (func $main_fn2 (export "main_fn2") (result i32) i32.const 43)
  (func (export "main_unslotted") (result i32) i32.const 7)
  (func (export "foo") (result i32) i32.const 1)
  (func (export "call_ptr") (param i32) (result i32) local.get 0 call_indirect (type $v_i))
  (func (export "load32") (param i32) (result i32) local.get 0 i32.load)
  (func (export "fill") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.fill)
  (func (export "g_dl_open") (param i32 i32) (result i32) local.get 0 local.get 1 call $dl_open)
  (func (export "g_dl_open_flags") (param i32 i32 i32) (result i32) local.get 0 local.get 1 local.get 2 call $dl_open_flags)
  (func (export "g_dl_sym") (param i32 i32 i32) (result i32) local.get 0 local.get 1 local.get 2 call $dl_sym)
  (func (export "g_dl_close") (param i32) local.get 0 call $dl_close)
  (func (export "g_dl_error") (param i32 i32) (result i32) local.get 0 local.get 1 call $dl_error)
"#
);

/// The loader tests' main module: [`MAIN_BODY`], `table` (the text of its table definition)
/// and the [`ALLOCATOR`].
pub fn main_wat(table: &str) -> String {
    format!("(module {MAIN_BODY} {table} {ALLOCATOR})")
}

/// The table of the default main module: 3 slots, growable, exported under its ABI name.
pub const DEFAULT_TABLE: &str = r#"(table (export "__indirect_function_table") 3 funcref)"#;

/// [`main_wat`] with the [`DEFAULT_TABLE`].
pub fn default_main_wat() -> String {
    main_wat(DEFAULT_TABLE)
}

/// The imports a side module starts with: the main module's memory and table, and the
/// globals `$mb` (`__memory_base`), `$tb` (`__table_base`) and `$sp` (`__stack_pointer`).
pub const SIDE_IMPORTS: &str = r#"
  (import "env" "memory" (memory 0))
  (import "env" "__indirect_function_table" (table 0 funcref))
  (import "env" "__memory_base" (global $mb i32))
  (import "env" "__table_base" (global $tb i32))
  (import "env" "__stack_pointer" (global $sp (mut i32)))
"#;

/// A side module's text: [`SIDE_IMPORTS`], then `body`.
pub fn side_wat(body: &str) -> String {
    format!("(module {SIDE_IMPORTS} {body})")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn main_body_is_imports_then_the_shared_exports_then_helpers() {
        let at = MAIN_BODY.find(MAIN_EXPORTS).expect("MAIN_BODY holds MAIN_EXPORTS");
        assert!(MAIN_BODY[..at].trim_end().ends_with("(result i32)))"), "the pymode imports come first");
        assert!(MAIN_BODY[at + MAIN_EXPORTS.len()..].trim_start().starts_with("(type $v_i"));
        assert!(default_main_wat().contains(r#"(global (export "__stack_pointer")"#));
    }
}
