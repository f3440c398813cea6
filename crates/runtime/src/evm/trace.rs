//! The call tracer: revm's inspector hooks build go-ethereum's `callTracer`
//! frames. System-contract calls from contracts are frames like any other.

use primitives::trace::CallFrame;
use primitives::{Address, U256};
use revm::context_interface::ContextTr;
use revm::context_interface::cfg::CreateScheme;
use revm::inspector::Inspector;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome, CallScheme, CreateInputs, CreateOutcome, InterpreterResult};

/// Frames of the calls under way (innermost last), and the finished top frame.
#[derive(Default)]
pub struct CallTracer {
    stack: Vec<CallFrame>,
    root: Option<CallFrame>,
}

impl CallTracer {
    /// The top frame, once execution has ended.
    pub fn finish(self) -> Option<CallFrame> {
        self.root
    }

    fn open(&mut self, frame: CallFrame) {
        self.stack.push(frame);
    }

    fn close(&mut self, r: &InterpreterResult, to: Option<Address>) {
        let Some(mut f) = self.stack.pop() else { return };
        f.gas_used = f.gas.saturating_sub(r.gas.remaining());
        f.output = r.output.clone();
        if let Some(to) = to {
            f.to = Some(to);
        }
        if !r.result.is_ok() {
            f.error = Some(if r.result.is_revert() { "execution reverted".into() } else { format!("{:?}", r.result) });
        }
        match self.stack.last_mut() {
            Some(parent) => parent.calls.push(f),
            None => self.root = Some(f),
        }
    }
}

impl<CTX: ContextTr> Inspector<CTX, EthInterpreter> for CallTracer {
    fn call(&mut self, ctx: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let (kind, to, value) = match inputs.scheme {
            CallScheme::Call => ("CALL", inputs.target_address, inputs.transfer_value()),
            CallScheme::StaticCall => ("STATICCALL", inputs.target_address, None),
            CallScheme::DelegateCall => ("DELEGATECALL", inputs.bytecode_address, None),
            CallScheme::CallCode => ("CALLCODE", inputs.bytecode_address, inputs.transfer_value()),
        };
        self.open(CallFrame {
            kind,
            from: inputs.caller,
            to: Some(to),
            value: Some(value.unwrap_or(U256::ZERO)).filter(|_| matches!(kind, "CALL" | "CALLCODE")),
            gas: inputs.gas_limit,
            input: inputs.input.bytes(ctx),
            ..Default::default()
        });
        None
    }

    fn call_end(&mut self, _ctx: &mut CTX, _inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.close(&outcome.result, None);
    }

    fn create(&mut self, _ctx: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let kind = match inputs.scheme() {
            CreateScheme::Create2 { .. } => "CREATE2",
            _ => "CREATE",
        };
        self.open(CallFrame {
            kind,
            from: inputs.caller(),
            value: Some(inputs.value()),
            gas: inputs.gas_limit(),
            input: inputs.init_code().clone(),
            ..Default::default()
        });
        None
    }

    fn create_end(&mut self, _ctx: &mut CTX, _inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        self.close(&outcome.result, outcome.address);
    }
}
