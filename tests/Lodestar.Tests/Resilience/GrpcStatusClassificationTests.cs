using System.Net;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Internal;

namespace Lodestar.Tests.Resilience;

public sealed class GrpcStatusClassificationTests
{
    [Theory]
    [InlineData("14", null, nameof(AttemptOutcome.GatewayFailure))]
    [InlineData("13", null, nameof(AttemptOutcome.Success))]
    [InlineData("13", "14,13", nameof(AttemptOutcome.ServerError))]
    [InlineData("8", "8", nameof(AttemptOutcome.ServerError))]
    [InlineData("14", "", nameof(AttemptOutcome.Success))]
    [InlineData("0", null, nameof(AttemptOutcome.Success))]
    public void ClassifyGrpcHeaders_TrailersOnly_OutcomeFromStatus(string status, string? codes, string expected)
    {
        // Arrange
        using var response = GrpcResponse(new MemoryStream());
        response.Headers.TryAddWithoutValidation("grpc-status", status);
        var options = new GrpcStatusOptions { FailureStatusCodes = codes?.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList() };

        // Act
        var outcome = FailureClassifier.ClassifyGrpcHeaders(response, options);

        // Assert
        Assert.Equal(expected, outcome.ToString());
    }

    [Fact]
    public void ClassifyGrpcHeaders_StatusInTrailers_Deferred()
    {
        using var response = GrpcResponse(new MemoryStream());

        Assert.Null(FailureClassifier.ClassifyGrpcHeaders(response, new GrpcStatusOptions()));
    }

    [Fact]
    public void ClassifyGrpcHeaders_Http503_GatewayFailure()
    {
        using var response = GrpcResponse(new MemoryStream());
        response.StatusCode = HttpStatusCode.ServiceUnavailable;

        Assert.Equal(AttemptOutcome.GatewayFailure, FailureClassifier.ClassifyGrpcHeaders(response, new GrpcStatusOptions()));
    }

    [Fact]
    public async Task ObserveGrpcResponse_BodyReadToEnd_ReportsTrailersOnce()
    {
        // Arrange
        using var response = GrpcResponse(new MemoryStream([0, 0, 0, 0, 0]));
        var outcomes = new List<EndpointOutcome>();
        EndpointOutcomes.ObserveGrpcResponse(response, new GrpcStatusOptions(), (o, s) => ((List<EndpointOutcome>)s!).Add(o), outcomes);
        var stream = await response.Content.ReadAsStreamAsync();
        var before = outcomes.Count;

        // Act: the transport fills the trailers as the body ends.
        var buffer = new byte[16];
        Assert.Equal(5, await stream.ReadAsync(buffer));
        response.TrailingHeaders.TryAddWithoutValidation("grpc-status", "14");
        Assert.Equal(0, await stream.ReadAsync(buffer));
        Assert.Equal(0, await stream.ReadAsync(buffer));
        await stream.DisposeAsync();

        // Assert
        Assert.Equal(0, before);
        Assert.Equal([EndpointOutcome.GatewayFailure], outcomes);
        Assert.Equal("application/grpc", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task ObserveGrpcResponse_DisposedBeforeEnd_Abandoned()
    {
        // Arrange
        using var response = GrpcResponse(new MemoryStream(new byte[64]));
        var outcomes = new List<EndpointOutcome>();
        EndpointOutcomes.ObserveGrpcResponse(response, new GrpcStatusOptions(), (o, s) => ((List<EndpointOutcome>)s!).Add(o), outcomes);
        var stream = await response.Content.ReadAsStreamAsync();

        // Act
        Assert.Equal(8, await stream.ReadAsync(new byte[8]));
        await stream.DisposeAsync();

        // Assert
        Assert.Equal([EndpointOutcome.Abandoned], outcomes);
    }

    [Fact]
    public async Task ObserveGrpcResponse_BodyBreaks_GatewayFailure()
    {
        // Arrange
        using var response = GrpcResponse(new BrokenStream());
        var outcomes = new List<EndpointOutcome>();
        EndpointOutcomes.ObserveGrpcResponse(response, new GrpcStatusOptions(), (o, s) => ((List<EndpointOutcome>)s!).Add(o), outcomes);
        var stream = await response.Content.ReadAsStreamAsync();

        // Act
        await Assert.ThrowsAsync<IOException>(async () => _ = await stream.ReadAsync(new byte[8]));

        // Assert
        Assert.Equal([EndpointOutcome.GatewayFailure], outcomes);
    }

    [Fact]
    public void ObserveGrpcResponse_TrailersOnly_ReportsAtOnceWithoutWrapping()
    {
        // Arrange
        using var response = GrpcResponse(new MemoryStream());
        response.Headers.TryAddWithoutValidation("grpc-status", "14");
        var content = response.Content;
        var outcomes = new List<EndpointOutcome>();

        // Act
        EndpointOutcomes.ObserveGrpcResponse(response, new GrpcStatusOptions(), (o, s) => ((List<EndpointOutcome>)s!).Add(o), outcomes);

        // Assert
        Assert.Equal([EndpointOutcome.GatewayFailure], outcomes);
        Assert.Same(content, response.Content);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(17)]
    public void Validate_FailureStatusCodeOutOfRange_NamesClientAndProperty(int code)
    {
        // Arrange
        var options = new LodestarClientOptions();
        options.Grpc.FailureStatusCodes = [14, code];

        // Act
        var result = new ResilienceOptionsValidator().Validate("orders-grpc", options);

        // Assert
        Assert.True(result.Failed);
        Assert.Contains("'orders-grpc'", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains($"Grpc.FailureStatusCodes contains {code}", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void FromException_CallerCancellation_Abandoned()
    {
        Assert.Equal(EndpointOutcome.Abandoned, EndpointOutcomes.FromException(new OperationCanceledException()));
        Assert.Equal(EndpointOutcome.ConnectFailure, EndpointOutcomes.FromException(new HttpRequestException(HttpRequestError.ConnectionError, "refused")));
        Assert.Equal(EndpointOutcome.GatewayFailure, EndpointOutcomes.FromException(new IOException("reset")));
    }

    private static HttpResponseMessage GrpcResponse(Stream body)
    {
        var content = new StreamContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = content };
    }

    private sealed class BrokenStream : MemoryStream
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => ValueTask.FromException<int>(new IOException("connection reset"));
    }
}
