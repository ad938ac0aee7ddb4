using System.Text;
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

    [Fact]
    public async Task ReadLineAsync_StreamEndsMidLine_ReportsTruncated()
    {
        var (lines, truncated) = await ReadAllAsync("{\"a\":1}\n{\"type\":\"ADD", 3, 16);

        Assert.Equal(["{\"a\":1}"], lines);
        Assert.True(truncated);
    }
}
