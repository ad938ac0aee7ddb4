using System.Text.Json;
using System.Text.Json.Serialization;
using Lodestar.Endpoints;

namespace Lodestar.Cli.Commands;

internal sealed record EndpointDto(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("port")] int Port,
    [property: JsonPropertyName("weight")] int Weight,
    [property: JsonPropertyName("zone")] string? Zone,
    [property: JsonPropertyName("metadata")] IReadOnlyDictionary<string, string> Metadata)
{
    public static EndpointDto From(DiscoveredEndpoint e) => new(e.Host, e.Port, e.Weight, e.Zone, e.Metadata);
}

internal sealed record ResolveDto(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("endpoints")] IReadOnlyList<EndpointDto> Endpoints);

internal sealed record WatchEventDto(
    [property: JsonPropertyName("service")] string Service,
    [property: JsonPropertyName("version")] long Version,
    [property: JsonPropertyName("endpoints")] IReadOnlyList<EndpointDto>? Endpoints,
    [property: JsonPropertyName("error")] string? Error);

internal static class EndpointJson
{
    public static readonly JsonSerializerOptions Options = new() { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public static string Resolve(EndpointSet set)
        => JsonSerializer.Serialize(new ResolveDto(set.ServiceName, set.Endpoints.Select(EndpointDto.From).ToList()), Options);
}
