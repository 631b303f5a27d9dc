//! The largest single allocation a piece of code asks for, so a fuzz target can tell a
//! length field that was trusted (a header claiming 2 GiB reserves 2 GiB) from ordinary
//! growth. The allocator is the system's; it only remembers, per thread, the largest
//! request since the last [`largest_allocation`] call. It serves the unit-test binary
//! only (`#[cfg(test)]`); the service keeps jemalloc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Tracking;

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates, so the
    // allocator may touch it.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: during thread teardown the slot may be gone; nothing to record then.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is passed through unchanged to the system allocator, which upholds
// the `GlobalAlloc` contract; recording a size allocates nothing.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: `pointer` came from this allocator, that is from `System`.
        unsafe { System.realloc(pointer, layout, new_size) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(pointer, layout) }
    }
}

/// The largest allocation this thread asked for since the previous call, in bytes.
pub(super) fn largest_allocation() -> usize {
    LARGEST.with(|largest| largest.replace(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_largest_request_of_this_thread() {
        largest_allocation();
        let small = vec![0u8; 100];
        let large: Vec<u8> = Vec::with_capacity(5_000_000);
        drop((small, large));
        assert!(largest_allocation() >= 5_000_000);
        assert!(
            largest_allocation() < 5_000_000,
            "the call resets the record"
        );
    }
}
