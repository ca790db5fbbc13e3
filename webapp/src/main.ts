import { createApp } from 'vue'
import 'uplot/dist/uPlot.min.css'
import './style.css'
import App from './App.vue'
import { startLive } from './lib/live'

createApp(App).mount('#app')
startLive()
