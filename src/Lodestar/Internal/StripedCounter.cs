using System.Numerics;

namespace Lodestar.Internal;

/// <summary>
/// A count that threads on different processors add to without contending for one cache line: each processor adds to
/// a cell of its own (picked by <see cref="Thread.GetCurrentProcessorId"/>, a cache line apart from the others), and
/// a reader sums the cells. Finagle's retry budget counts requests the same way (its <c>WindowedAdder</c> over a
/// <c>LongAdder</c>), since every request of a service adds to it and only a retry decision reads it.
/// </summary>
internal sealed class StripedCounter
{
    // Longs per 64-byte cache line: cell i sits at index i * Stride, so no two cells share a line.
    private const int Stride = 8;

    // Enough to spread the processors of a typical host; more would only cost memory (a cache line per cell).
    private const int MaxCells = 16;

    private readonly long[] _cells;
    private readonly int _mask;

    public StripedCounter()
        : this(Environment.ProcessorCount)
    {
    }

    /// <param name="processors">How many processors may add at once; the cells are the next power of two, at most 16.</param>
    internal StripedCounter(int processors)
    {
        var cells = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(processors, 1, MaxCells));
        _cells = new long[cells * Stride];
        _mask = cells - 1;
    }

    /// <summary>Gets how many cells the count is spread over.</summary>
    internal int Cells => _mask + 1;

    /// <summary>Adds one, to the cell of the processor the thread runs on.</summary>
    public void Increment() => Interlocked.Increment(ref _cells[(Thread.GetCurrentProcessorId() & _mask) * Stride]);

    /// <summary>Gets the count: the sum of the cells, each read atomically (an add racing with the sum may or may not be in it).</summary>
    public long Sum()
    {
        long sum = 0;
        for (var i = 0; i < _cells.Length; i += Stride)
        {
            sum += Interlocked.Read(ref _cells[i]);
        }

        return sum;
    }

    /// <summary>Sets every cell to zero (an add racing with the reset may be lost).</summary>
    public void Reset()
    {
        for (var i = 0; i < _cells.Length; i += Stride)
        {
            Interlocked.Exchange(ref _cells[i], 0);
        }
    }
}
