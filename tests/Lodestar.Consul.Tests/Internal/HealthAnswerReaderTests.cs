using System.Text;
using System.Text.Json;
using Lodestar.Consul.Internal;

namespace Lodestar.Consul.Tests.Internal;

public sealed class HealthAnswerReaderTests
{
    [Fact]
    public async Task ReadAsync_AnswerOfManySegmentsArrivingInSmallReads_ReadsEveryEntryInOrder()
    {
        // Arrange: about 600 KB (ten 64 KB segments), handed over 7 bytes at a time so entries straddle segments.
        var body = new StringBuilder("[");
        for (var i = 0; i < 3000; i++)
        {
            body.Append(i == 0 ? "" : ",").Append(Entry(i, new string('m', i % 300)));
        }

        var ids = new List<string?>();

        // Act
        var count = await HealthAnswerReader.ReadAsync(new TrickleStream(Encoding.UTF8.GetBytes(body.Append(']').ToString()), 7), (position, entry) =>
        {
            Assert.Equal(ids.Count, position);
            ids.Add(entry?.Service?.ID);
        }, CancellationToken.None);

        // Assert
        Assert.True(body.Length > 9 * 64 * 1024, $"{body.Length} bytes");
        Assert.Equal(3000, count);
        Assert.Equal(Enumerable.Range(0, 3000).Select(i => "orders-" + i), ids);
    }

    [Fact]
    public async Task ReadAsync_ByteOrderMarkAndWhiteSpace_AreSkipped()
    {
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.UTF8.GetBytes(" \r\n[" + Entry(1, "") + "]\n")).ToArray();
        var ids = new List<string?>();

        var count = await HealthAnswerReader.ReadAsync(new MemoryStream(bytes), (_, entry) => ids.Add(entry?.Service?.ID), CancellationToken.None);

        Assert.Equal(1, count);
        Assert.Equal(["orders-1"], ids);
    }

    [Theory]
    [InlineData("[" + "{\"Service\":{\"ID\":\"a\",}}" + "]")] // an entry that is not JSON: skipping it is not possible
    [InlineData("[{\"Service\":{\"ID\":\"a\"}}")] // the array never closes
    [InlineData("[]]")] // data after the array
    public async Task ReadAsync_MalformedJson_RefusesTheWholeAnswer(string json)
    {
        var error = await Assert.ThrowsAnyAsync<JsonException>(() => HealthAnswerReader.ReadAsync(new MemoryStream(Encoding.UTF8.GetBytes(json)), (_, _) => { }, CancellationToken.None));

        Assert.Contains("LineNumber: 0", error.Message, StringComparison.Ordinal);
    }

    private static string Entry(int i, string meta)
        => $$$"""{"Node":{"Node":"n1","Address":"127.0.0.1"},"Service":{"ID":"orders-{{{i}}}","Port":{{{1 + i}}},"Meta":{"m":"{{{meta}}}"}},"Checks":[{"Status":"passing"}]}""";

    private sealed class TrickleStream(byte[] data, int chunk) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => data.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(Math.Min(count, chunk), data.Length - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
