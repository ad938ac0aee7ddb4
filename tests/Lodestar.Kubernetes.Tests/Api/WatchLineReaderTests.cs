using System.Text;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Api.Internal;

namespace Lodestar.Kubernetes.Tests.Api;

public sealed class WatchLineReaderTests
{
    /// <summary>A stream that hands out at most a few bytes per read, as a slow network does.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => base.ReadAsync(buffer[..Math.Min(chunk, buffer.Length)], cancellationToken);
    }

    private static async Task<(List<string> Lines, bool Truncated)> ReadAllAsync(string text, int chunk, int bufferSize)
    {
        using var reader = new WatchLineReader(new TrickleStream(Encoding.UTF8.GetBytes(text), chunk), bufferSize);
        var lines = new List<string>();
        for (var i = 0; i < 10_000; i++)
        {
            var (ok, line, truncated) = await reader.ReadLineAsync(default);
            if (!ok)
            {
                return (lines, truncated);
            }

            lines.Add(Encoding.UTF8.GetString(line.Span));
        }

        throw new InvalidOperationException("too many lines");
    }

    [Theory]
    [InlineData(1, 16)]
    [InlineData(7, 16)]
    [InlineData(4096, 16_384)]
    public async Task ReadLineAsync_LinesSplitAcrossReads_ReassemblesEachLine(int chunk, int bufferSize)
    {
        var longLine = new string('x', 5_000);
        var (lines, truncated) = await ReadAllAsync("{\"a\":1}\n\r\n{\"b\":2}\r\n" + longLine + "\n", chunk, bufferSize);

        Assert.Equal(["{\"a\":1}", "{\"b\":2}", longLine], lines);
        Assert.False(truncated);
    }

    /// <summary>A stream of one endless line ('x' and no newline) that hands out bytes without allocating.</summary>
    private sealed class EndlessLineStream(long length) : Stream
    {
        private long _left = length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, _left);
            buffer[..n].Fill((byte)'x');
            _left -= n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task ReadLineAsync_LineLongerThanTheCap_FailsAtTheCapHoldingAboutTheCap()
    {
        const int Cap = 1024 * 1024;
        using var reader = new WatchLineReader(new EndlessLineStream(64L * 1024 * 1024), maxLineBytes: Cap, description: "Kubernetes API server https://127.0.0.1:6443, watch");

        // The stream completes synchronously, so every byte the read allocates is allocated on this thread.
        var before = GC.GetAllocatedBytesForCurrentThread();
        var read = reader.ReadLineAsync(default);
        Assert.True(read.IsCompleted);
        var error = await Assert.ThrowsAsync<RegistryResponseTooLargeException>(async () => await read);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(Cap, error.Limit);
        Assert.Contains("Kubernetes API server https://127.0.0.1:6443", error.Message, StringComparison.Ordinal);
        Assert.Contains("larger than the limit of 1048576 bytes", error.Message, StringComparison.Ordinal);
        Assert.True(allocated < 3L * Cap, $"a 64 MiB line under a 1 MiB cap allocated {allocated >> 10} KiB");
    }

    [Fact]
    public async Task ReadLineAsync_LineOfExactlyTheCap_IsRead()
    {
        var line = new string('y', 100_000);
        using var reader = new WatchLineReader(new MemoryStream(Encoding.UTF8.GetBytes(line + "\n" + line + "y\n")), 16, maxLineBytes: 100_000);

        var (ok, read, _) = await reader.ReadLineAsync(default);
        Assert.True(ok);
        Assert.Equal(100_000, read.Length);
        await Assert.ThrowsAsync<RegistryResponseTooLargeException>(async () => await reader.ReadLineAsync(default));
    }

    [Fact]
    public async Task ReadLineAsync_StreamEndsMidLine_ReportsTruncated()
    {
        var (lines, truncated) = await ReadAllAsync("{\"a\":1}\n{\"type\":\"ADD", 3, 16);

        Assert.Equal(["{\"a\":1}"], lines);
        Assert.True(truncated);
    }
}
