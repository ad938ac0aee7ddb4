namespace Lodestar.Internal;

/// <summary>
/// Randomness behind a seam so tests can script it. The default is <see cref="Random.Shared"/>: thread-safe and
/// allocation-free, which the pick path needs.
/// </summary>
internal class RandomSource
{
    public static readonly RandomSource Shared = new();

    /// <summary>Returns a number in [0, <paramref name="maxExclusive"/>).</summary>
    public virtual int Next(int maxExclusive) => Random.Shared.Next(maxExclusive);

    /// <summary>Returns a number in [0, 1).</summary>
    public virtual double NextDouble() => Random.Shared.NextDouble();
}
