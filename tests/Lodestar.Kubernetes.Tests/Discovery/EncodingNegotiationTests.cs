using Google.Protobuf;
using Lodestar.Kubernetes.Tests.Api;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Kubernetes;
using Wire = Lodestar.Kubernetes.Protobuf;

namespace Lodestar.Kubernetes.Tests.Discovery;

/// <summary>Which encoding the source asks for and reads, and protobuf frames a broken server may send.</summary>
public sealed class EncodingNegotiationTests : IAsyncLifetime
{
    private static readonly TimeSpan s_wait = SourceHarness.Wait;
    private FakeKubernetesApiServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await FakeKubernetesApiServer.StartAsync();
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-a", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.1")));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<SourceHarness> StartWatchingAsync(KubernetesEncoding encoding)
    {
        var harness = await SourceHarness.StartAsync(_server, configure: o => o.Encoding = encoding);
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080") && _server.OpenWatches == 1, s_wait, "listed and watching");
        return harness;
    }

    private async Task AssertFollowsChangesAsync(SourceHarness harness)
    {
        _server.Upsert(FakeEndpointSlice.Create("shop", "orders-b", "orders", 8080, FakeEndpoint.ReadyAt("10.0.0.2")));
        await Eventually.TrueAsync(() => harness.Observer.Has("10.0.0.1:8080", "10.0.0.2:8080"), s_wait, "the watch delivers the change");
    }

    [Fact]
    public async Task RunAsync_AutoAgainstProtobufServer_ListsAndWatchesInProtobuf()
    {
        await using var harness = await StartWatchingAsync(KubernetesEncoding.Auto);
        await AssertFollowsChangesAsync(harness);

        Assert.Equal(2, _server.ProtobufResponses);
        Assert.Equal(0, _server.JsonResponses);
        Assert.Empty(harness.Observer.Errors);
    }

    [Fact]
    public async Task RunAsync_AutoAgainstJsonOnlyServer_FallsBackToJson()
    {
        _server.ServeProtobuf = false;
        await using var harness = await StartWatchingAsync(KubernetesEncoding.Auto);
        await AssertFollowsChangesAsync(harness);

        Assert.Equal(0, _server.ProtobufResponses);
        Assert.Equal(2, _server.JsonResponses);
        Assert.Empty(harness.Observer.Errors);
    }

    [Fact]
    public async Task RunAsync_JsonForced_AsksForJsonFromAProtobufServer()
    {
        await using var harness = await StartWatchingAsync(KubernetesEncoding.Json);
        await AssertFollowsChangesAsync(harness);

        Assert.Equal(0, _server.ProtobufResponses);
        Assert.Equal(2, _server.JsonResponses);
    }

    [Fact]
    public async Task RunAsync_ProtobufForcedAgainstJsonOnlyServer_ReportsTheRefusal()
    {
        _server.ServeProtobuf = false;
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.Encoding = KubernetesEncoding.Protobuf);

        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0, s_wait, "the refused list is reported");

        var error = harness.Observer.Errors[0].Message;
        Assert.Contains("406", error, StringComparison.Ordinal);
        Assert.Contains(_server.Url.GetLeftPart(UriPartial.Authority), error, StringComparison.Ordinal);
        Assert.Contains("service 'orders' in namespace 'shop'", error, StringComparison.Ordinal);
        Assert.Null(harness.Observer.Latest);
    }

    [Fact]
    public async Task RunAsync_ProtobufErrorStatus_MessageReadFromTheProtobufStatus()
    {
        _server.FailNext(FakeRequestKind.List, 403);
        await using var harness = await SourceHarness.StartAsync(_server, configure: o => o.Encoding = KubernetesEncoding.Protobuf);

        await Eventually.TrueAsync(() => harness.Observer.Errors.Count > 0 && harness.Observer.Has("10.0.0.1:8080"), s_wait, "the 403 is reported, then the retry lists");

        Assert.Contains("cannot list resource \"endpointslices\"", harness.Observer.Errors[0].Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, byte[], string> BadFrames => new()
    {
        { "bytes that are not protobuf", Frame([0x0A, 0xFF, 0xFF, 0x03]), "not a valid protobuf WatchEvent" },
        { "object without the magic", Frame(Event("MODIFIED", new Wire.Discovery.EndpointSlice { AddressType = "IPv4" }.ToByteArray())), "magic bytes 'k8s\\0'" },
        { "envelope of compressed content", Frame(Event("MODIFIED", WithEncoding("gzip"))), "content encoding 'gzip'" },
        { "slice without metadata", Frame(Event("MODIFIED", WatchFrameReaderTests.Envelope("EndpointSlice", new Wire.Discovery.EndpointSlice { AddressType = "IPv4" }))), "without metadata.name" },
        { "event without an object", Frame(new Wire.Meta.WatchEvent { Type = "MODIFIED" }.ToByteArray()), "MODIFIED watch event without an object" },
        { "unknown event type", Frame(new Wire.Meta.WatchEvent { Type = "RESIZED" }.ToByteArray()), "unknown type 'RESIZED'" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task RunAsync_UnreadableProtobufFrame_ReportedSkippedAndTheWatchGoesOn(string fault, byte[] frame, string expected)
    {
        await using var harness = await StartWatchingAsync(KubernetesEncoding.Protobuf);

        _server.SendRawProtobufBytes(frame);
        await AssertFollowsChangesAsync(harness);

        var error = Assert.Single(harness.Observer.Errors);
        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), fault + ": " + error.Message);
        Assert.Contains("service 'orders' in namespace 'shop'", error.Message, StringComparison.Ordinal);
        Assert.Single(_server.Requests, r => r.StartsWith("WATCH", StringComparison.Ordinal));
    }

    private static byte[] Frame(byte[] body)
    {
        var frame = new byte[4 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame, 4);
        return frame;
    }

    private static byte[] Event(string type, byte[] raw)
        => new Wire.Meta.WatchEvent { Type = type, Object = new Wire.Runtime.RawExtension { Raw = ByteString.CopyFrom(raw) } }.ToByteArray();

    private static byte[] WithEncoding(string encoding)
    {
        var unknown = new Wire.Runtime.Unknown { TypeMeta = new Wire.Runtime.TypeMeta { Kind = "EndpointSlice" }, Raw = ByteString.CopyFrom(1, 2, 3), ContentEncoding = encoding };
        return [.. "k8s\0"u8, .. unknown.ToByteArray()];
    }
}
