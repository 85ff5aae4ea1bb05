//! What the BU and BA flag fields share: raw-bit access, set operations and a `Debug`
//! that names the flags (unknown bits kept and shown in hex).

use core::fmt;

/// Implements `empty`, `bits`, `from_bits`, `contains`, `set`, `|`, `|=`, `&` and a naming
/// `Debug` for a flags newtype over `$int`. `$names` lists `(bit, name)` in wire order;
/// `$hex_width` is the `{:#0N$x}` width used for reserved bits.
macro_rules! flags_newtype {
    ($ty:ident, $int:ty, $names:expr, $hex_width:expr) => {
        impl $ty {
            /// No flags.
            pub const fn empty() -> Self {
                $ty(0)
            }
            /// The raw bits.
            pub const fn bits(self) -> $int {
                self.0
            }
            /// From raw bits (all kept).
            pub const fn from_bits(bits: $int) -> Self {
                $ty(bits)
            }
            /// True if every bit of `other` is set.
            pub const fn contains(self, other: $ty) -> bool {
                self.0 & other.0 == other.0
            }
            /// Sets or clears the bits of `other`.
            pub fn set(&mut self, other: $ty, on: bool) {
                if on {
                    self.0 |= other.0;
                } else {
                    self.0 &= !other.0;
                }
            }
        }

        impl core::ops::BitOr for $ty {
            type Output = $ty;
            fn bitor(self, rhs: $ty) -> $ty {
                $ty(self.0 | rhs.0)
            }
        }

        impl core::ops::BitOrAssign for $ty {
            fn bitor_assign(&mut self, rhs: $ty) {
                self.0 |= rhs.0;
            }
        }

        impl core::ops::BitAnd for $ty {
            type Output = $ty;
            fn bitand(self, rhs: $ty) -> $ty {
                $ty(self.0 & rhs.0)
            }
        }

        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                $crate::mh::flags::fmt_flags(
                    f,
                    stringify!($ty),
                    u32::from(self.0),
                    $names,
                    u32::from(Self::RESERVED),
                    $hex_width,
                )
            }
        }
    };
}

pub(crate) use flags_newtype;

/// `Name(A|H|0x0003)`: the named bits that are set, then any reserved bits in hex.
pub(crate) fn fmt_flags(
    f: &mut fmt::Formatter<'_>,
    type_name: &str,
    bits: u32,
    names: &[(u32, &str)],
    reserved: u32,
    hex_width: usize,
) -> fmt::Result {
    write!(f, "{type_name}(")?;
    let mut first = true;
    for &(bit, name) in names {
        if bits & bit != 0 {
            if !first {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            first = false;
        }
    }
    let rest = bits & reserved;
    if rest != 0 {
        if !first {
            f.write_str("|")?;
        }
        write!(f, "{rest:#0hex_width$x}")?;
    }
    f.write_str(")")
}
