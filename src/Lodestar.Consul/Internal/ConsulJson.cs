using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Lodestar.Consul.Internal;

// Models of the parts of Consul's HTTP API that Lodestar reads and writes. Consul uses PascalCase JSON names, which are
// the C# property names, so no renaming is needed.

/// <summary>One entry of <c>GET /v1/health/service/:service</c>: only the fields Lodestar reads, so that unread ones cost nothing.</summary>
internal sealed class HealthServiceEntry
{
    public HealthNode? Node { get; set; }

    public HealthService? Service { get; set; }

    public List<HealthCheck?>? Checks { get; set; }

    /// <summary>Gets why the entry could not be read (it is not an object, or a field has the wrong type), or <see langword="null"/>.</summary>
    [JsonIgnore]
    public string? Problem { get; init; }
}

internal sealed class HealthNode
{
    public string? Node { get; set; }

    public string? Address { get; set; }

    public string? Datacenter { get; set; }

    public Dictionary<string, string?>? Meta { get; set; }
}

internal sealed class HealthService
{
    public string? ID { get; set; }

    public List<string?>? Tags { get; set; }

    public string? Address { get; set; }

    public Dictionary<string, string?>? Meta { get; set; }

    public int Port { get; set; }

    public ServiceWeights? Weights { get; set; }
}

internal sealed class ServiceWeights
{
    public int Passing { get; set; } = 1;

    public int Warning { get; set; } = 1;
}

internal sealed class HealthCheck
{
    public string? Status { get; set; }
}

/// <summary>
/// Reads one entry of a health answer without letting it fail the whole answer: an entry that is not an object, or whose
/// fields have the wrong type or cannot be decoded, becomes an entry with <see cref="HealthServiceEntry.Problem"/> set,
/// and reading goes on with the next one. <see langword="null"/> entries stay <see langword="null"/>.
/// </summary>
/// <remarks>
/// The serializer hands a custom converter a whole JSON value (it reads ahead to the value's end), so the reader can be
/// rewound to the entry's start and the entry skipped after a failure part-way through it.
/// </remarks>
internal sealed class TolerantHealthEntryConverter : JsonConverter<HealthServiceEntry>
{
    private static readonly JsonSerializerOptions s_options = new()
    {
        TypeInfoResolver = ConsulJsonContext.Default,
        Converters = { new TolerantHealthEntryConverter() },
    };

    /// <summary>Gets the type information that reads entries with this converter.</summary>
    public static JsonTypeInfo<HealthServiceEntry> TypeInfo { get; } = (JsonTypeInfo<HealthServiceEntry>)s_options.GetTypeInfo(typeof(HealthServiceEntry));

    public override HealthServiceEntry? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            var kind = reader.TokenType;
            reader.Skip();
            return new HealthServiceEntry { Problem = $"is {Describe(kind)}, not an object" };
        }

        var start = reader;
        try
        {
            // The strict contract (no converter of its own) reads the fields.
            return JsonSerializer.Deserialize(ref reader, ConsulJsonContext.Default.HealthServiceEntry);
        }
        catch (JsonException ex)
        {
            reader = start;
            reader.Skip();
            return new HealthServiceEntry { Problem = $"could not be read at {ex.Path ?? "$"} (a field of the wrong type, or text that is not UTF-8)" };
        }
    }

    public override void Write(Utf8JsonWriter writer, HealthServiceEntry value, JsonSerializerOptions options)
        => throw new NotSupportedException("Health entries are only read.");

    private static string Describe(JsonTokenType kind) => kind switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        _ => kind.ToString(),
    };
}

/// <summary>The body of <c>PUT /v1/agent/service/register</c>.</summary>
internal sealed class AgentServiceRegistration
{
    public required string ID { get; set; }

    public required string Name { get; set; }

    public List<string>? Tags { get; set; }

    public string? Address { get; set; }

    public int Port { get; set; }

    public Dictionary<string, string>? Meta { get; set; }

    public AgentServiceCheck? Check { get; set; }

    public string? Namespace { get; set; }

    public string? Partition { get; set; }
}

internal sealed class AgentServiceCheck
{
    public string? CheckID { get; set; }

    public string? Name { get; set; }

    public string? HTTP { get; set; }

    public string? Interval { get; set; }

    public string? Timeout { get; set; }

    public string? TTL { get; set; }

    public string? Status { get; set; }

    public string? DeregisterCriticalServiceAfter { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(HealthServiceEntry))]
[JsonSerializable(typeof(AgentServiceRegistration))]
internal sealed partial class ConsulJsonContext : JsonSerializerContext;
