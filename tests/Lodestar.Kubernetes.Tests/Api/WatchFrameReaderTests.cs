using System.Buffers.Binary;
using Google.Protobuf;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Api.Internal;
using Wire = Lodestar.Kubernetes.Protobuf;

namespace Lodestar.Kubernetes.Tests.Api;

public sealed class WatchFrameReaderTests
{
    private static byte[] Frame(byte[] body)
    {
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame, 4);
        return frame;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    [Fact]
    public async Task ReadEventAsync_FramesInOneStream_ReturnsEachBodyThenCleanEnd()
    {
        var stream = new MemoryStream(Concat(Frame([1, 2, 3]), Frame([]), Frame(new byte[40_000])));
        using var reader = new WatchFrameReader(stream, 64 * 1024, "test");

        var first = await reader.ReadEventAsync(CancellationToken.None);
        Assert.True(first.Ok);
        Assert.Equal([1, 2, 3], first.Event.ToArray());
        var empty = await reader.ReadEventAsync(CancellationToken.None);
        Assert.True(empty.Ok);
        Assert.Equal(0, empty.Event.Length);
        var large = await reader.ReadEventAsync(CancellationToken.None);
        Assert.Equal(40_000, large.Event.Length);
        var end = await reader.ReadEventAsync(CancellationToken.None);
        Assert.False(end.Ok);
        Assert.False(end.Truncated);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(9)]
    public async Task ReadEventAsync_StreamCutInsideAFrame_ReportsTruncated(int kept)
    {
        var whole = Concat(Frame([7]), Frame(new byte[10]));
        var stream = new MemoryStream(whole[..(5 + kept)]);
        using var reader = new WatchFrameReader(stream, 1024, "test");

        Assert.True((await reader.ReadEventAsync(CancellationToken.None)).Ok);
        var cut = await reader.ReadEventAsync(CancellationToken.None);

        Assert.False(cut.Ok);
        Assert.True(cut.Truncated);
    }

    [Fact]
    public async Task ReadEventAsync_FrameAnnouncesMoreThanTheCap_FailsBeforeReadingItsBody()
    {
        var stream = new CountingStream(Concat(Frame([1]), [0x00, 0x10, 0x00, 0x01], new byte[64 * 1024]));
        using var reader = new WatchFrameReader(stream, 1024 * 1024, "Kubernetes API server https://127.0.0.1:1, watch of EndpointSlices");
        await reader.ReadEventAsync(CancellationToken.None);

        var error = await Assert.ThrowsAsync<RegistryResponseTooLargeException>(() => reader.ReadEventAsync(CancellationToken.None).AsTask());

        Assert.Contains("larger than the limit of 1048576 bytes (its protobuf frame announces 1048577)", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxWatchEventBytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(1048576, error.Limit);
        Assert.Equal(5 + 4, stream.BytesRead);
    }

    [Fact]
    public void DecodeWatchEvent_EnvelopedSlice_ReadsTypeMetadataAndUnsetConditionsAsUnknown()
    {
        var slice = new Wire.Discovery.EndpointSlice
        {
            Metadata = new Wire.Meta.ObjectMeta { Name = "orders-a", ResourceVersion = "42", Labels = { ["kubernetes.io/service-name"] = "orders" } },
            AddressType = "IPv4",
            Endpoints =
            {
                new Wire.Discovery.Endpoint { Addresses = { "10.0.0.1" }, Conditions = new Wire.Discovery.EndpointConditions { Ready = false } },
                new Wire.Discovery.Endpoint { Addresses = { "10.0.0.2" }, Conditions = new Wire.Discovery.EndpointConditions() },
            },
            Ports = { new Wire.Discovery.EndpointPort { Name = "http", Port = 8080 } },
        };
        var frame = new Wire.Meta.WatchEvent { Type = "MODIFIED", Object = new Wire.Runtime.RawExtension { Raw = ByteString.CopyFrom(Envelope("EndpointSlice", slice)) } };

        var decoded = KubernetesProtobuf.DecodeWatchEvent(frame.ToByteArray());

        Assert.Equal("MODIFIED", decoded.Type);
        Assert.Equal("orders-a", decoded.Object!.Metadata!.Name);
        Assert.Equal("42", decoded.Object.Metadata.ResourceVersion);
        Assert.Equal("orders", decoded.Object.Metadata.Labels!["kubernetes.io/service-name"]);
        Assert.False(decoded.Object.Endpoints![0].Conditions!.Ready);
        Assert.Null(decoded.Object.Endpoints[1].Conditions!.Ready);
        Assert.Equal(8080, decoded.Object.Ports![0].Port);
    }

    [Fact]
    public void DecodeWatchEvent_ErrorStatus_ReadsCodeAndMessage()
    {
        var status = new Wire.Meta.Status { Code = 410, Reason = "Expired", Message = "too old resource version" };
        var frame = new Wire.Meta.WatchEvent { Type = "ERROR", Object = new Wire.Runtime.RawExtension { Raw = ByteString.CopyFrom(Envelope("Status", status)) } };

        var decoded = KubernetesProtobuf.DecodeWatchEvent(frame.ToByteArray());

        Assert.Equal("ERROR", decoded.Type);
        Assert.Equal(410, decoded.Object!.Code);
        Assert.Equal("too old resource version", decoded.Object.Message);
    }

    [Fact]
    public void DecodeWatchEvent_FieldsOfNewerServers_SkippedWhateverTheirWireType()
    {
        var slice = new Wire.Discovery.EndpointSlice
        {
            Metadata = new Wire.Meta.ObjectMeta { Name = "orders-a", ResourceVersion = "7" },
            Ports = { new Wire.Discovery.EndpointPort { Port = 8080 } },
        }.ToByteArray();

        // Field 90 varint, 91 fixed64, 92 length-delimited, 93 fixed32: fields this reader does not know.
        byte[] unknown = [0xD0, 0x05, 0x96, 0x01, 0xD9, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 0xE2, 0x05, 0x02, 0x41, 0x42, 0xED, 0x05, 9, 9, 9, 9];
        var frame = new Wire.Meta.WatchEvent
        {
            Type = "ADDED",
            Object = new Wire.Runtime.RawExtension { Raw = ByteString.CopyFrom(Envelope("EndpointSlice", Wire.Discovery.EndpointSlice.Parser.ParseFrom(Concat(unknown, slice, unknown)))) },
        };

        var decoded = KubernetesProtobuf.DecodeWatchEvent(Concat(frame.ToByteArray(), unknown));

        Assert.Equal("orders-a", decoded.Object!.Metadata!.Name);
        Assert.Equal(8080, decoded.Object.Ports![0].Port);
    }

    [Theory]
    [InlineData(new byte[] { 0x0A, 0x05, 0x41 }, "a length that runs past the end at byte 2")]
    [InlineData(new byte[] { 0x18, 0xFF, 0xFF }, "a truncated varint at byte 3")]
    [InlineData(new byte[] { 0x0B }, "wire type 3")]
    [InlineData(new byte[] { 0x00 }, "a field number out of range")]
    public void DecodeWatchEvent_MalformedWireFormat_FailsNamingTheProblemAndByte(byte[] frame, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => KubernetesProtobuf.DecodeWatchEvent(frame));

        Assert.Contains("not a valid protobuf WatchEvent", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DecodeList_WithoutMagic_FailsNamingTheMagic()
    {
        var list = new Wire.Discovery.EndpointSliceList().ToByteArray();

        var error = Assert.Throws<InvalidDataException>(() => KubernetesProtobuf.DecodeList(list));

        Assert.Contains("magic bytes 'k8s\\0'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DecodeList_EnvelopeOfAnotherKind_FailsNamingIt()
    {
        var error = Assert.Throws<InvalidDataException>(() => KubernetesProtobuf.DecodeList(Envelope("PodList", new Wire.Discovery.EndpointSliceList())));

        Assert.Contains("protobuf PodList, not an EndpointSliceList", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DecodeStatus_ProtobufStatus_ReadsIt()
    {
        var status = KubernetesProtobuf.DecodeStatus(Envelope("Status", new Wire.Meta.Status { Code = 403, Message = "forbidden" }));

        Assert.Equal(403, status!.Code);
        Assert.Equal("forbidden", status.Message);
    }

    internal static byte[] Envelope(string kind, IMessage message)
    {
        var unknown = new Wire.Runtime.Unknown { TypeMeta = new Wire.Runtime.TypeMeta { Kind = kind, ApiVersion = "discovery.k8s.io/v1" }, Raw = message.ToByteString() };
        return Concat("k8s\0"u8.ToArray(), unknown.ToByteArray());
    }

    /// <summary>A stream over fixed bytes that counts what its reader took.</summary>
    private sealed class CountingStream(byte[] data) : MemoryStream(data)
    {
        public long BytesRead { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await base.ReadAsync(buffer, cancellationToken);
            BytesRead += read;
            return read;
        }
    }
}
